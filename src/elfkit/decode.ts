// A function's machine code, decoded: every instruction of x86-64 code from its entry (what
// uprobe placement reads, src/probes/uprobe-placement.ts), and every RET instruction — a
// uprobe on each RET is how a Go function's return is seen (a uretprobe would rewrite the
// return address on a goroutine stack that the Go runtime may move). x86-64 is decoded by
// Capstone (WebAssembly build, embedded in the executable; it knows the VEX and EVEX
// encodings GOAMD64=v3 emits); arm64 instructions are 4 bytes, so RETs are read directly.
import { Capstone, Const, loadCapstone } from "capstone-wasm";
// The package exports no subpaths: its wasm is imported by path, so the build embeds it.
import capstoneWasm from "../../node_modules/capstone-wasm/dist/capstone.wasm" with { type: "file" };
import type { ElfFile } from "./elf.ts";

export class DecodeError extends Error {}

let x86: Capstone | undefined;

/** Load the decoder (once); needed before findRets on x86-64. */
export async function loadDecoder(): Promise<void> {
  if (x86) return;
  await loadCapstone({ wasmBinary: new Uint8Array(await Bun.file(capstoneWasm).arrayBuffer()) });
  x86 = new Capstone(Const.CS_ARCH_X86, Const.CS_MODE_64);
  // The first decode is slow (the engine compiles on first use): pay it now, not when a
  // program that has just started is waiting to be probed.
  x86.disasm(WARM_UP, { address: 0 });
}

// push rbp; mov rbp,rsp; sub rsp,0x20; mov rax,[rsp+8]; vmovdqu ymm0,[rax]; call +0; cmp rax,rbx; jne +0; add rsp,0x20; pop rbp; ret
const WARM_UP = new Uint8Array([
  0x55, 0x48, 0x89, 0xe5, 0x48, 0x83, 0xec, 0x20, 0x48, 0x8b, 0x44, 0x24, 0x08, 0xc5, 0xfe, 0x6f, 0x00, 0xe8, 0x00, 0x00, 0x00, 0x00,
  0x48, 0x39, 0xd8, 0x75, 0x00, 0x48, 0x83, 0xc4, 0x20, 0x5d, 0xc3,
]);

export interface FunctionRets {
  /** Virtual addresses of the RET instructions. */
  rets: number[];
  /** Where decoding failed (data inside the code, as some assembly functions hold): a
   * function with any is not safe to probe on its returns. */
  undecodable: number[];
}

/** One decoded instruction (Intel syntax). */
export interface Instruction {
  address: number;
  size: number;
  bytes: Uint8Array;
  mnemonic: string;
  operands: string;
}

export interface DecodedCode {
  instructions: Instruction[];
  /** Where decoding failed (data inside the code, as some assembly functions hold). */
  undecodable: number[];
}

/** The code at [entry, end) (virtual addresses) of an x86-64 file, instruction by instruction. */
export function decodeX86(elf: ElfFile, entry: number, end: number): DecodedCode {
  if (elf.machine !== "x86-64") throw new DecodeError(`${elf.path}: only x86-64 code can be decoded`);
  return x86Decode(codeOf(elf, entry, end), entry);
}

function codeOf(elf: ElfFile, entry: number, end: number): Uint8Array {
  const offset = elf.fileOffset(entry);
  if (offset === undefined || end <= entry || elf.fileOffset(end - 1) === undefined) throw new DecodeError(`${elf.path}: function at 0x${entry.toString(16)} is not in the file`);
  return elf.read(offset, end - entry);
}

/** The RETs of the code at [entry, end) (virtual addresses). */
export function findRets(elf: ElfFile, entry: number, end: number): FunctionRets {
  const code = codeOf(elf, entry, end);
  if (elf.machine === "arm64") return { rets: arm64Rets(code, entry), undecodable: [] };
  if (elf.machine !== "x86-64") throw new DecodeError(`${elf.path}: only x86-64 and arm64 code can be decoded`);
  return retsOf(x86Decode(code, entry));
}

/** The RETs of decoded x86-64 code: RET and RET imm16 (0xc3, 0xc2, with or without
 * prefixes); far returns are not Go's. */
export function retsOf(code: DecodedCode): FunctionRets {
  return { rets: code.instructions.filter((i) => i.mnemonic === "ret" || i.mnemonic === "retq").map((i) => i.address), undecodable: code.undecodable };
}

function x86Decode(code: Uint8Array, address: number): DecodedCode {
  if (!x86) throw new DecodeError("the x86-64 decoder is not loaded (loadDecoder)");
  const instructions: Instruction[] = [];
  const undecodable: number[] = [];
  let at = 0;
  while (at < code.length) {
    // Capstone stops at a byte it cannot decode (and throws when that is the first one):
    // note it, step over it, go on.
    let insns: ReturnType<Capstone["disasm"]>;
    try {
      insns = x86.disasm(code.subarray(at), { address: address + at });
    } catch {
      insns = [];
    }
    for (const insn of insns) {
      instructions.push({ address: Number(insn.address), size: insn.size, bytes: code.subarray(at, at + insn.size), mnemonic: insn.mnemonic, operands: insn.opStr });
      at += insn.size;
    }
    if (at < code.length) {
      undecodable.push(address + at);
      at++;
    }
  }
  return { instructions, undecodable };
}

/** RET {Xn}: 0xd65f0000 | n << 5. */
function arm64Rets(code: Uint8Array, address: number): number[] {
  const rets: number[] = [];
  const dv = new DataView(code.buffer, code.byteOffset, code.byteLength);
  for (let at = 0; at + 4 <= code.length; at += 4) if ((dv.getUint32(at, true) & 0xfffffc1f) === 0xd65f0000) rets.push(address + at);
  return rets;
}
