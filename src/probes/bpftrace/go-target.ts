// What only ELF analysis can tell a bpftrace program about a Go executable: where a
// function starts and where it returns (Go cannot take uretprobes: its stacks move), where
// argument and result words are (register ABI or stack), the current goroutine, and struct
// field offsets. Stripped binaries work: functions come from .gopclntab.
import type { ElfFile } from "../../elfkit/elf.ts";
import { readGoBuildInfo, type GoBuildInfo } from "../../elfkit/go-buildinfo.ts";
import { readGoFunctions, type GoFunctionTable } from "../../elfkit/gopclntab.ts";
import { findRets } from "../../elfkit/decode.ts";
import { readDwarfStructs } from "../../elfkit/dwarf.ts";

export class GenError extends Error {}

/** Go's ABIInternal integer registers on x86-64, in order, as bpftrace names them. */
const REGABI_REGISTERS = ["ax", "bx", "cx", "di", "si", "r8", "r9", "r10", "r11"];

/** Field offsets the built-in templates use, for binaries without DWARF (checked against
 * DWARF for Go 1.19 by the tests). Other versions need DWARF. */
export const OFFSETS_BY_RELEASE: Record<string, Record<string, Record<string, number>>> = {
  "1.19": {
    "net/http.Request": { Method: 0, URL: 16 },
    "net/url.URL": { Scheme: 0, Host: 40, Path: 56 },
    "net/http.Response": { StatusCode: 16 },
  },
};

export interface GoFunctionPlace {
  name: string;
  vaddr: number;
  /** The entry as a file offset (what uprobes are placed by). */
  fileOffset: number;
  /** File offsets of its RET instructions. */
  retOffsets: number[];
}

export interface GoTarget {
  path: string;
  buildInfo: GoBuildInfo;
  /** Go 1.17+ on x86-64: arguments and results in registers. */
  regabi: boolean;
  /** Whether the executable has a symbol table (bpftrace can name its functions). */
  hasSymbols: boolean;
  /** Virtual addresses of its code (.text): [start, end). */
  text: [number, number];
  func(name: string): GoFunctionPlace;
  /** The first of `names` the binary has, or undefined. */
  firstOf(names: string[]): string | undefined;
  /** bpftrace expression for argument word `i` at a function's entry. */
  arg(i: number): string;
  /** bpftrace expression for result word `i` at a RET (`argWords`: the stack ABI needs it). */
  ret(i: number, argWords?: number): string;
  /** bpftrace expression for the current goroutine (its runtime.g address). */
  goroutine(): string;
  offset(struct: string, field: string): number;
  /** Link-time addresses at which `text` lies in the read-only data (Go's string constants). */
  stringAddresses(text: string): number[];
}

export function goTarget(elf: ElfFile, path: string): GoTarget {
  // bpftrace's probe syntax has no quoting for these.
  if (/[\s:"]/.test(path)) throw new GenError(`${path}: bpftrace cannot name a file whose path has a space, a colon or a quote (use a link without)`);
  const buildInfo = readGoBuildInfo(elf);
  if (!buildInfo) throw new GenError(`${path} is not a Go executable (no Go build information)`);
  if (elf.machine !== "x86-64") throw new GenError(`${path}: only x86-64 Go executables are supported (this one is ${elf.machine})`);
  const table: GoFunctionTable | undefined = readGoFunctions(elf);
  if (!table) throw new GenError(`${path}: no Go function table (.gopclntab)`);
  const [major, minor] = buildInfo.release;
  const regabi = major > 1 || minor >= 17;
  const places = new Map<string, GoFunctionPlace>();
  /** Struct name -> field offsets from DWARF; null: not there (or no DWARF). */
  const structs = new Map<string, Map<string, number> | null>();
  let hasDwarf: boolean | undefined;

  let rodata: { addr: number; bytes: Buffer } | null | undefined;
  const fileOffset = (vaddr: number, what: string) => {
    const off = elf.fileOffset(vaddr);
    if (off === undefined) throw new GenError(`${path}: ${what} at 0x${vaddr.toString(16)} is not in the file`);
    return off;
  };

  return {
    path,
    buildInfo,
    regabi,
    hasSymbols: !!elf.section(".symtab"),
    text: (() => {
      const t = elf.section(".text");
      return t ? [t.addr, t.addr + t.size] : [0, 0];
    })(),
    stringAddresses(text) {
      if (rodata === undefined) {
        const s = elf.section(".rodata");
        rodata = s ? { addr: s.addr, bytes: Buffer.from(elf.sectionBytes(s)) } : null;
      }
      const out: number[] = [];
      if (!rodata || !text) return out;
      for (let at = rodata.bytes.indexOf(text, 0, "latin1"); at >= 0 && out.length < 16; at = rodata.bytes.indexOf(text, at + 1, "latin1")) out.push(rodata.addr + at);
      return out;
    },
    func(name) {
      let place = places.get(name);
      if (place) return place;
      const f = table.find([name]).get(name);
      if (!f) throw new GenError(`${path} has no function ${name} (${buildInfo.version})`);
      const rets = findRets(elf, f.entry, f.end);
      if (rets.undecodable.length) throw new GenError(`${name} does not decode at 0x${rets.undecodable[0]!.toString(16)}: its returns cannot be found`);
      place = { name, vaddr: f.entry, fileOffset: fileOffset(f.entry, name), retOffsets: rets.rets.map((r) => fileOffset(r, `a RET of ${name}`)) };
      places.set(name, place);
      return place;
    },
    firstOf(names) {
      const found = table.find(names);
      return names.find((n) => found.has(n));
    },
    arg(i) {
      if (regabi) {
        const reg = REGABI_REGISTERS[i];
        if (!reg) throw new GenError(`argument word ${i}: only the first ${REGABI_REGISTERS.length} words are in registers`);
        return `reg("${reg}")`;
      }
      return `*(uint64 *)(reg("sp") + ${8 * (i + 1)})`;
    },
    ret(i, argWords) {
      if (regabi) {
        const reg = REGABI_REGISTERS[i];
        if (!reg) throw new GenError(`result word ${i}: only the first ${REGABI_REGISTERS.length} words are in registers`);
        return `reg("${reg}")`;
      }
      if (argWords === undefined) throw new GenError(`${buildInfo.version} returns results on the stack: give the number of argument words (ret ${i} WORDS)`);
      return `*(uint64 *)(reg("sp") + ${8 * (argWords + i + 1)})`;
    },
    goroutine() {
      if (!regabi) throw new GenError(`${buildInfo.version}: the goroutine is known only with the register ABI (Go 1.17+, in r14)`);
      return `reg("r14")`;
    },
    offset(struct, field) {
      if (!structs.has(struct)) {
        const found = readDwarfStructs(elf, [struct]);
        hasDwarf = found !== undefined;
        structs.set(struct, found?.get(struct)?.members ?? null);
      }
      const members = structs.get(struct);
      const fromDwarf = members?.get(field);
      if (fromDwarf !== undefined) return fromDwarf;
      if (members) throw new GenError(`${struct} has no field ${field} in ${path}`);
      const table = OFFSETS_BY_RELEASE[`${major}.${minor}`]?.[struct]?.[field];
      if (table !== undefined) return table;
      throw new GenError(`${path}: the offset of ${struct}.${field} is unknown (${hasDwarf ? "not in its DWARF" : "no DWARF"}; built in only for Go ${Object.keys(OFFSETS_BY_RELEASE).join(", ")})`);
    },
  };
}
