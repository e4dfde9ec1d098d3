// Where each uprobe goes. A uprobe on most x86-64 instructions costs two traps (the kernel
// single-steps the instruction out of line); on push, direct call, jmp, jcc and nop it costs
// one (the kernel emulates them), about 30 times less on this project's machines
// (bench/uprobe-cost.ts). Function entries usually start with `sub rsp` or Go's stack check,
// both single-stepped. So each probe is moved, by reading the function's code, to the first
// place the kernel emulates where the program sees exactly what it would have seen at the
// entry — and left at the entry, saying why, when no such place is proven:
//  - Go (*Conn).Write and Read: the first emulated instruction past the stack check on its
//    fall-through, with rax, rbx, rcx and r14 not written before it and only the stack
//    stored to. Past the check a call passes once (a grown stack restarts the function at
//    its entry, before the place), so Write needs no RET probes to tell a restart from a
//    new call. Read's RETs stay: its result is only known there.
//  - OpenSSL SSL_read/SSL_read_ex (and the write pair): both wrap one internal function
//    that does the reading with SSL_read_ex's arguments and results. When the code proves
//    it — SSL_read_ex passes its four arguments unchanged to that function and returns 1
//    exactly when it does; SSL_read calls it once and nothing else but error reporting —
//    the entry probe and the uretprobe go on that function's entry (a push) and see both
//    exported functions' calls with one probe each.
//  - A probe without a uretprobe (SSL_free) moves like Go's, keeping the argument it reads.
//  - A uretprobe needs its entry: it finds the return address at the top of the stack only
//    there. Probes paired with one stay at the entry.
import type { ElfFile } from "../elfkit/elf.ts";
import { decodeX86, type DecodedCode, type Instruction } from "../elfkit/decode.ts";

/** How the x86-64 kernel runs the instruction a uprobe sits on. */
export type InstructionClass = "single-stepped" | "push" | "call" | "jmp" | "jcc" | "nop" | "nop5";

export interface Placement {
  vaddr: number;
  /** The instruction there, as a disassembler prints it. */
  instruction: string;
  class: InstructionClass;
  /** Why this place (or why the entry was kept). */
  why: string;
}

export const isEmulated = (c: InstructionClass) => c !== "single-stepped";

const PREFIXES = new Set([0xf0, 0xf2, 0xf3, 0x2e, 0x36, 0x3e, 0x26, 0x64, 0x65, 0x66, 0x67]);

/** As arch/x86/kernel/uprobes.c decides: push of a register, direct call/jmp/jcc without an
 * operand-size prefix, and nop are emulated; a 5-byte nop may even become a call. */
export function classify(insn: Pick<Instruction, "bytes">): InstructionClass {
  const b = insn.bytes;
  let i = 0;
  let opsize = false;
  while (i < b.length && PREFIXES.has(b[i]!)) opsize ||= b[i++] === 0x66;
  const rex = i < b.length && (b[i]! & 0xf0) === 0x40 ? b[i++]! : 0;
  const op = b[i];
  if (op === undefined) return "single-stepped";
  if (b.length === 5 && b[0] === 0x0f && b[1] === 0x1f && b[2] === 0x44 && b[3] === 0 && b[4] === 0) return "nop5";
  if (b.length === 1 && op === 0x90) return "nop";
  // push of a register: one byte, or REX.B (0x41) and one byte — nothing else is emulated.
  if (op >= 0x50 && op <= 0x57 && i === b.length - 1 && (b.length === 1 || (b.length === 2 && rex === 0x41))) return "push";
  if (opsize || rex) return "single-stepped";
  if (op === 0xe8) return "call";
  if (op === 0xe9 || op === 0xeb) return "jmp";
  if (op >= 0x70 && op <= 0x7f) return "jcc";
  if (op === 0x0f && b[i + 1]! >= 0x80 && b[i + 1]! <= 0x8f) return "jcc";
  return "single-stepped";
}

const text = (i: Instruction) => `${i.mnemonic}${i.operands ? ` ${i.operands}` : ""}`;

const place = (i: Instruction, why: string): Placement => ({ vaddr: i.address, instruction: text(i), class: classify(i), why });

/** The register a general-purpose register name is part of ("eax" -> "rax"). */
const REGISTER = new Map<string, string>();
for (const [r64, ...parts] of [
  ["rax", "eax", "ax", "al", "ah"],
  ["rbx", "ebx", "bx", "bl", "bh"],
  ["rcx", "ecx", "cx", "cl", "ch"],
  ["rdx", "edx", "dx", "dl", "dh"],
  ["rsi", "esi", "si", "sil"],
  ["rdi", "edi", "di", "dil"],
  ["rbp", "ebp", "bp", "bpl"],
  ["rsp", "esp", "sp", "spl"],
]) {
  for (const p of [r64!, ...parts]) REGISTER.set(p, r64!);
}
for (let n = 8; n <= 15; n++) for (const s of ["", "d", "w", "b"]) REGISTER.set(`r${n}${s}`, `r${n}`);

/** Instructions that write their first operand (and flags) and nothing else. */
const WRITES_FIRST = new Set([
  "mov", "movabs", "movzx", "movsx", "movsxd", "lea", "add", "sub", "and", "or", "xor", "adc", "sbb", "shl", "shr", "sar", "inc", "dec", "neg", "not",
  "movups", "movaps", "movdqu", "movdqa", "movq", "movd", "pxor", "xorps", "xorpd", "vmovdqu", "vmovdqa", "vmovups", "vmovaps", "vpxor", "vxorps",
]);
const WRITES_NOTHING = new Set(["cmp", "test", "nop", "endbr64", "bt"]);
/** A store into the function's own stack: [rsp], [rsp + k]. */
const STACK_SLOT = /^(?:\w+ ptr )?\[rsp(?: \+ (?:0x[0-9a-f]+|\d+))?\]$/;

type Effect = { writes: string[] } | { unknown: string };

/** What an instruction on the straight path changes that a probe could read: registers, or
 * memory other than the function's own stack slots (then unknown). */
function effectOf(i: Instruction): Effect {
  const ops = i.operands ? i.operands.split(", ") : [];
  if (WRITES_NOTHING.has(i.mnemonic)) return { writes: [] };
  if (i.mnemonic === "pop" && ops.length === 1) return REGISTER.has(ops[0]!) ? { writes: [REGISTER.get(ops[0]!)!, "rsp"] } : { unknown: "pops into memory" };
  if (i.mnemonic === "push" && ops.length === 1 && REGISTER.has(ops[0]!)) return { writes: ["rsp"] };
  if (WRITES_FIRST.has(i.mnemonic) || /^(set|cmov)[a-z]+$/.test(i.mnemonic)) {
    const dest = ops[0] ?? "";
    if (dest.includes("[")) return STACK_SLOT.test(dest) ? { writes: [] } : { unknown: "stores to memory the probe may read" };
    return { writes: [REGISTER.get(dest) ?? dest] };
  }
  return { unknown: `cannot tell what it changes` };
}

const isBranch = (i: Instruction) => /^(j|call|ret|loop|syscall|int|ud2|hlt|jrcxz|jecxz)/.test(i.mnemonic);
const directTarget = (i: Instruction) => (/^0x[0-9a-f]+$/.test(i.operands) ? parseInt(i.operands, 16) : undefined);

/**
 * The first instruction from `start` on the fall-through path that the kernel emulates, such
 * that every instruction before it leaves the registers in `keep` alone and stores only to
 * the stack: a probe there sees what it would see at `start`. A string says why there is none.
 */
export function firstEmulated(insns: Instruction[], start: number, keep: ReadonlySet<string>, limit = 40): number | string {
  for (let n = start; n < insns.length && n < start + limit; n++) {
    const i = insns[n]!;
    if (isEmulated(classify(i))) return n;
    if (isBranch(i)) return `"${text(i)}" ends the straight path first`;
    const e = effectOf(i);
    if ("unknown" in e) return `"${text(i)}": ${e.unknown}`;
    const hit = e.writes.find((r) => keep.has(r));
    if (hit) return `"${text(i)}" overwrites ${hit}, which the probe reads`;
  }
  return "no instruction the kernel emulates near the entry";
}

/** The instructions of [vaddr, vaddr + size); `window`: the size only bounds how far to read,
 * so what follows the first byte that does not decode (an instruction cut by the window's
 * end) is left out rather than an error. */
function decodeFrom(elf: ElfFile, vaddr: number, size: number, window = false): Instruction[] | string {
  if (elf.machine !== "x86-64") return "only x86-64 code is placed";
  try {
    const code = decodeX86(elf, vaddr, vaddr + size);
    if (!window || !code.undecodable.length) return wholeCode(code);
    const whole = code.instructions.filter((i) => i.address < code.undecodable[0]!);
    return whole.length ? whole : "no code";
  } catch (e) {
    return (e as Error).message;
  }
}

/** Decoded code as decodeFrom gives it: every instruction, or why not. */
function wholeCode(code: DecodedCode): Instruction[] | string {
  if (code.undecodable.length) return `the code does not decode at 0x${code.undecodable[0]!.toString(16)}`;
  return code.instructions.length ? code.instructions : "no code";
}

/** The function's entry, as it is: `why` says why it is kept (unless it is emulated). */
export function entryPlacement(elf: ElfFile, vaddr: number, why: string): Placement {
  const insns = elf.machine === "x86-64" ? decodeFrom(elf, vaddr, 16, true) : [];
  const first = typeof insns === "string" ? undefined : insns[0];
  if (!first) return { vaddr, instruction: "?", class: "single-stepped", why };
  return place(first, isEmulated(classify(first)) ? "the entry is emulated" : why);
}

/**
 * Why a place past the entry might not see each call exactly once: a jump of the function
 * lands between the entry and the place (the place could be skipped or passed twice), or the
 * function jumps where its code does not say (a jump table). Jumps back to the entry itself
 * (Go's restart after growing the stack) start the call over and are fine.
 */
function jumpsIntoPrologue(insns: Instruction[], placeAt: number): string | undefined {
  const entry = insns[0]!.address;
  for (const i of insns) {
    if (!/^j/.test(i.mnemonic)) continue;
    const to = directTarget(i);
    if (to === undefined) return `"${text(i)}" jumps where the code does not say`;
    if (to > entry && to <= placeAt) return `"${text(i)}" at 0x${i.address.toString(16)} jumps between the entry and the place`;
  }
  return undefined;
}

/** An entry probe's place in a function (no uretprobe): the entry, or a cheaper equivalent. */
export function placeEntryProbe(elf: ElfFile, vaddr: number, size: number, reads: string[]): Placement {
  if (!size) return entryPlacement(elf, vaddr, "entry kept: the function's size is not known");
  const insns = decodeFrom(elf, vaddr, size);
  if (typeof insns === "string") return entryPlacement(elf, vaddr, `entry kept: ${insns}`);
  if (isEmulated(classify(insns[0]!))) return place(insns[0]!, "the entry is emulated");
  const n = firstEmulated(insns, 0, new Set(reads));
  if (typeof n === "string") return place(insns[0]!, `entry kept: ${n}`);
  const into = jumpsIntoPrologue(insns, insns[n]!.address);
  if (into) return place(insns[0]!, `entry kept: ${into}`);
  return place(insns[n]!, `first emulated instruction; ${reads.join(", ")} untouched before it, and no jump lands before it`);
}

export interface GoPlacement extends Placement {
  /** Past the stack check: each call passes once (no restart), so no RET is needed to tell. */
  once: boolean;
}

const GO_ARGS = new Set(["rax", "rbx", "rcx", "r14"]);

/** A Go (*Conn).Read or Write entry probe (it reads rax, rbx, rcx and r14); `size` is the
 * whole function's (every jump in it is checked). */
export function placeGoEntry(elf: ElfFile, vaddr: number, size: number, decoded?: DecodedCode): GoPlacement {
  const insns = decoded ? wholeCode(decoded) : decodeFrom(elf, vaddr, size);
  if (typeof insns === "string") return { ...entryPlacement(elf, vaddr, `entry kept: ${insns}`), once: false };
  // The stack check: cmp rsp|r12, [r14 + 0x10] (r12 = rsp - frame), then jbe/jb to morestack.
  const check = insns.findIndex((i, n) => n < 6 && i.mnemonic === "cmp" && / qword ptr \[r14 \+ 0x10\]$/.test(i.operands));
  const branch = check >= 0 ? insns[check + 1] : undefined;
  if (!branch || !/^jbe?$/.test(branch.mnemonic)) return { ...place(insns[0]!, "entry kept: no stack check found"), once: false };
  // What comes before the check (r12 = rsp - frame) must leave the arguments alone too.
  for (let n = 0; n < check; n++) {
    const i = insns[n]!;
    const e = effectOf(i);
    if (isBranch(i) || "unknown" in e || e.writes.some((r) => GO_ARGS.has(r))) return { ...place(insns[0]!, `entry kept: "${text(i)}" before the stack check`), once: false };
  }
  const n = firstEmulated(insns, check + 2, GO_ARGS);
  if (typeof n === "string") return { ...place(insns[0]!, `entry kept: ${n}`), once: false };
  const into = jumpsIntoPrologue(insns, insns[n]!.address);
  if (into) return { ...place(insns[0]!, `entry kept: ${into}`), once: false };
  return { ...place(insns[n]!, "first emulated instruction past the stack check; rax, rbx, rcx, r14 untouched before it, and no jump lands before it"), once: true };
}

export interface OpensslFunction {
  name: string;
  vaddr: number;
  size: number;
}

/** One OpenSSL probe: its place, the function code the program is told (enum tw_ssl_fn),
 * and the exported functions whose calls it sees. */
export interface OpensslProbe {
  covers: string[];
  fn: number;
  place: Placement;
  /** A uretprobe at the same place (an entry). */
  returns: boolean;
}

/** What the error paths of SSL_read/SSL_write call besides the internal function. */
const ERROR_CALLS = ["__stack_chk_fail", "ERR_new", "ERR_set_debug", "ERR_set_error", "ERR_put_error"];
const PLT_SECTIONS = [".plt", ".plt.sec", ".plt.got"];

/**
 * The internal function an SSL_*_ex function forwards to, when the code shows it is only
 * that: its four argument registers reach a direct call (or tail jump) unchanged, and after
 * the call it returns 1 exactly when the call returned 1. A string says why not.
 */
export function exForwardTarget(insns: Instruction[]): number | string {
  let n = 0;
  for (; n < insns.length && !isBranch(insns[n]!); n++) {
    const e = effectOf(insns[n]!);
    if ("unknown" in e) return `"${text(insns[n]!)}": ${e.unknown}`;
    const hit = e.writes.find((r) => ["rdi", "rsi", "rdx", "rcx"].includes(r));
    if (hit) return `"${text(insns[n]!)}" changes an argument (${hit})`;
  }
  const branch = insns[n];
  const target = branch && directTarget(branch);
  if (!branch || target === undefined || !/^(call|jmp)$/.test(branch.mnemonic)) return "it does not start by calling one function";
  if (branch.mnemonic === "jmp") return target; // a tail call: its result is the function's
  for (const v of [1, 0, -1, 2, 0x7fffffff, -0x80000000]) {
    const r = returnedAfterCall(insns, n + 1, v);
    if (typeof r === "string") return r;
    if ((r === 1) !== (v === 1)) return `it returns ${r} when the call returns ${v}`;
  }
  return target;
}

/** What a straight run of code from insns[from] to its RET returns in eax when eax = `v` at
 * `from` — for the few instructions such epilogues use; a string when it cannot tell. */
function returnedAfterCall(insns: Instruction[], from: number, v: number): number | string {
  const regs = new Map<string, number>([["eax", v | 0]]);
  let zf: boolean | undefined;
  let sf: boolean | undefined;
  const is32 = (op: string) => /^e[a-z]{2}$|^r\d+d$/.test(op);
  const value = (op: string) => (/^(0x[0-9a-f]+|\d+)$/.test(op) ? Number(op) | 0 : regs.get(op));
  for (let n = from; n < insns.length && n < from + 16; n++) {
    const i = insns[n]!;
    const ops = i.operands ? i.operands.split(", ") : [];
    const [a, b] = ops;
    if (i.mnemonic === "ret") {
      const r = regs.get("eax");
      return r === undefined ? "its result is not known at its RET" : r;
    }
    if (i.mnemonic === "xor" && a === b && is32(a!)) {
      regs.set(a!, 0);
      [zf, sf] = [true, false];
    } else if (i.mnemonic === "test" && a === b && is32(a!) && regs.has(a!)) {
      const x = regs.get(a!)!;
      [zf, sf] = [x === 0, x < 0];
    } else if (i.mnemonic === "mov" && is32(a!) && b !== undefined && value(b) !== undefined) {
      regs.set(a!, value(b)!);
    } else if (i.mnemonic.startsWith("cmov") && is32(a!) && regs.has(b!) && zf !== undefined && sf !== undefined) {
      const cc = i.mnemonic.slice(4);
      // After test and xor, OF and CF are clear.
      const taken = { s: sf, ns: !sf, e: zf, z: zf, ne: !zf, nz: !zf, le: zf || sf, g: !zf && !sf, l: sf, ge: !sf }[cc];
      if (taken === undefined) return `cannot follow "${text(i)}"`;
      if (taken) regs.set(a!, regs.get(b!)!);
    } else if ((i.mnemonic === "add" || i.mnemonic === "sub") && a === "rsp") {
      // the frame goes; the flags it sets are not followed
      zf = sf = undefined;
    } else if (i.mnemonic === "pop" && a !== "rax") {
      // a saved register comes back
    } else {
      return `cannot follow "${text(i)}" after the call`;
    }
  }
  return "no RET right after the call";
}

/** Whether `fn` can only produce data through one call of `target`: it calls it once and
 * cannot reach that call twice, its other calls go to imports (another library cannot hand
 * out this library's plaintext) or to the error functions, and it jumps nowhere else. */
function onlyThrough(elf: ElfFile, insns: Instruction[], target: number, errorCalls: Set<number>): string | undefined {
  const start = insns[0]!.address;
  const last = insns[insns.length - 1]!;
  const end = last.address + last.size;
  const plts = elf.sections.filter((s) => PLT_SECTIONS.includes(s.name));
  const inPlt = (a: number) => plts.some((s) => a >= s.addr && a < s.addr + s.size);
  const calls = insns.filter((i) => i.mnemonic === "call" && directTarget(i) === target);
  if (calls.length !== 1) return `it calls that function ${calls.length} times`;
  const at = calls[0]!.address;
  for (const i of insns) {
    if (!isBranch(i) || i.mnemonic === "ret") continue;
    const to = directTarget(i);
    if (to === undefined) return `"${text(i)}" goes where the code does not say`;
    if (i.mnemonic === "call") {
      if (to !== target && !inPlt(to) && !errorCalls.has(to)) return `it also calls 0x${to.toString(16)}`;
    } else if (to < start || to >= end) {
      if (!inPlt(to) && !errorCalls.has(to)) return `"${text(i)}" leaves the function`;
    } else if (to < i.address && to <= at) {
      return `"${text(i)}" may run the call again`;
    }
  }
  return undefined;
}

/**
 * The probes for an OpenSSL's functions (those it exports of OPENSSL_FUNCTIONS, with their
 * tw_ssl_fn codes). `moved: false` keeps every probe at its function's entry (what
 * `--uprobe-placement entry` asks for).
 */
export function planOpenssl(elf: ElfFile, functions: (OpensslFunction & { fn: number })[], codes: { read: number; write: number; readEx: number; writeEx: number; free: number }, moved = true): OpensslProbe[] {
  const probes: OpensslProbe[] = [];
  const done = new Set<string>();
  const byName = new Map(functions.map((f) => [f.name, f]));
  if (moved) {
    const errorSyms = new Map([...elf.symbols(new Set(ERROR_CALLS))].filter(([, s]) => s.defined));
    const errorCalls = new Set([...errorSyms.values()].map((s) => s.value));
    for (const [plain, ex, fn] of [["SSL_read", "SSL_read_ex", codes.readEx], ["SSL_write", "SSL_write_ex", codes.writeEx]] as const) {
      const p = byName.get(plain);
      const x = byName.get(ex);
      if (!p || !x) continue;
      const why = internalFor(elf, p, x, errorCalls);
      if (typeof why === "string") {
        for (const f of [p, x]) {
          probes.push({ covers: [f.name], fn: f.fn, place: entryPlacement(elf, f.vaddr, `entry kept (a uretprobe needs it): ${why}`), returns: true });
          done.add(f.name);
        }
        continue;
      }
      probes.push({ covers: [plain, ex], fn, place: why, returns: true });
      done.add(plain).add(ex);
    }
  }
  for (const f of functions) {
    if (done.has(f.name)) continue;
    if (f.fn === codes.free) {
      probes.push({ covers: [f.name], fn: f.fn, place: moved ? placeEntryProbe(elf, f.vaddr, f.size, ["rdi"]) : entryPlacement(elf, f.vaddr, "entry (--uprobe-placement entry)"), returns: false });
    } else {
      probes.push({ covers: [f.name], fn: f.fn, place: entryPlacement(elf, f.vaddr, moved ? "entry kept: a uretprobe needs it" : "entry (--uprobe-placement entry)"), returns: true });
    }
  }
  return probes;
}

/** The entry of the internal function both `plain` and `ex` read or write through, or why not. */
function internalFor(elf: ElfFile, plain: OpensslFunction, ex: OpensslFunction, errorCalls: Set<number>): Placement | string {
  const exCode = decodeFrom(elf, ex.vaddr, Math.min(ex.size || 64, 512), !ex.size || ex.size > 512);
  if (typeof exCode === "string") return `${ex.name}: ${exCode}`;
  const target = exForwardTarget(exCode);
  if (typeof target === "string") return `${ex.name}: ${target}`;
  if (!plain.size) return `${plain.name}: its size is not known`;
  if (plain.size > 1024) return `${plain.name}: longer than the 1,024 bytes read of it`;
  const plainCode = decodeFrom(elf, plain.vaddr, plain.size);
  if (typeof plainCode === "string") return `${plain.name}: ${plainCode}`;
  const not = onlyThrough(elf, plainCode, target, errorCalls);
  if (not) return `${plain.name}: ${not}`;
  const inner = decodeFrom(elf, target, 16, true);
  if (typeof inner === "string") return `0x${target.toString(16)}: ${inner}`;
  if (!isEmulated(classify(inner[0]!))) return `the function both call (0x${target.toString(16)}) starts with "${text(inner[0]!)}", no cheaper`;
  const verb = plain.name.includes("read") ? "read" : "write";
  return place(
    inner[0]!,
    `the internal function ${plain.name} and ${ex.name} both ${verb} through, its entry emulated (${ex.name} passes its arguments and result through; ${plain.name} calls it once and nothing else but error reporting)`,
  );
}

/** For -v: where the OpenSSL probes went, in a few words. */
export function describeOpensslPlaces(probes: OpensslProbe[]): string {
  const cheap = probes.filter((p) => isEmulated(p.place.class)).length;
  const shared = probes.filter((p) => p.covers.length > 1).map((p) => `${p.covers.join("+")} at their internal function`);
  return `${cheap} of ${probes.length} places emulated${shared.length ? `: ${shared.join(", ")}` : ""}`;
}
