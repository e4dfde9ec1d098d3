// The function table of a Go executable, from .gopclntab: every function's name and address
// range. The table survives stripping (`-ldflags=-s -w`), which removes .symtab, so it is
// how a stripped binary's crypto/tls functions are found.
//
// Header (Go 1.18+, magic 0xfffffff0; 1.20+ 0xfffffff1): magic u32, two pad bytes, the
// instruction quantum, the pointer size, then pointer-sized nfunc, nfiles, textStart,
// funcnameOffset, cuOffset, filetabOffset, pctabOffset, pclnOffset. At pclnOffset, nfunc + 1
// pairs {entryOff u32 (from textStart), funcOff u32}; the last entryOff is the end of the
// text. Each _func (at pclnOffset + funcOff) starts {entryOff u32, nameOff i32 (into the
// name table)}. Go 1.16/1.17 (magic 0xfffffffa) has no textStart, and pointer-sized
// {entry, funcOff} pairs and _func.entry.
import type { ElfFile } from "./elf.ts";

export interface GoFunction {
  name: string;
  /** Virtual addresses: [entry, end). */
  entry: number;
  end: number;
}

export interface GoFunctionTable {
  /** "1.18+" (0xfffffff0 / 0xfffffff1) or "1.16" (0xfffffffa). */
  layout: "1.16" | "1.18" | "1.20";
  /** 1 on x86-64, 4 on arm64. */
  quantum: number;
  /** Every function (decoded on first use). */
  readonly functions: GoFunction[];
  /** The functions with these names (found without decoding every name). */
  find(names: Iterable<string>): Map<string, GoFunction>;
}

export class GoPclntabError extends Error {}

const MAGICS: Record<number, GoFunctionTable["layout"]> = { 0xfffffffa: "1.16", 0xfffffff0: "1.18", 0xfffffff1: "1.20" };

/** undefined when the file has no .gopclntab. */
export function readGoFunctions(elf: ElfFile): GoFunctionTable | undefined {
  // PIE binaries carry it in .data.rel.ro (it holds pointers fixed up at load).
  const sec = elf.section(".gopclntab") ?? elf.section(".data.rel.ro.gopclntab");
  if (!sec) return undefined;
  const tab = elf.sectionBytes(sec);
  const fail = (why: string): never => {
    throw new GoPclntabError(`${elf.path}: .gopclntab ${why}`);
  };
  if (tab.length < 16) fail("is truncated");
  const dv = new DataView(tab.buffer, tab.byteOffset, tab.byteLength);
  const magic = dv.getUint32(0, true);
  const layout = MAGICS[magic];
  if (!layout) fail(`has an unknown magic 0x${magic.toString(16)} (Go before 1.16, or not Go)`);
  const quantum = tab[6]!;
  const ptrSize = tab[7]!;
  if (ptrSize !== 8) fail(`pointer size ${ptrSize} (only 64-bit is supported)`);
  const word = (i: number) => {
    const off = 8 + i * ptrSize;
    if (off + 8 > tab.length) fail("is truncated");
    return Number(dv.getBigUint64(off, true));
  };
  const u32 = (off: number) => {
    if (off < 0 || off + 4 > tab.length) fail("points outside itself");
    return dv.getUint32(off, true);
  };
  const nfunc = word(0);
  const modern = layout !== "1.16";
  const textStart = modern ? word(2) : 0;
  const funcnameOffset = word(modern ? 3 : 2);
  const pclnOffset = word(modern ? 7 : 6);
  const entrySize = modern ? 8 : 16;
  if (nfunc > tab.length / entrySize || pclnOffset + (nfunc + 1) * entrySize > tab.length) fail("has a function count larger than itself");

  const decoder = new TextDecoder("latin1");
  const nameAt = (nameOff: number) => {
    const start = funcnameOffset + nameOff;
    if (start < 0 || start >= tab.length) fail("has a name outside itself");
    let end = start;
    while (end < tab.length && tab[end] !== 0) end++;
    return decoder.decode(tab.subarray(start, end));
  };
  const entryOf = (i: number) =>
    modern ? textStart + u32(pclnOffset + i * 8) : Number(dv.getBigUint64(pclnOffset + i * 16, true));
  const funcOffOf = (i: number) => (modern ? u32(pclnOffset + i * 8 + 4) : Number(dv.getBigUint64(pclnOffset + i * 16 + 8, true)));

  const recordOf = (i: number): { nameOff: number } => {
    const funcAt = pclnOffset + funcOffOf(i);
    if (funcAt + 12 > tab.length) fail("has a function record outside itself");
    return { nameOff: dv.getInt32(funcAt + (modern ? 4 : 8), true) };
  };
  const functionAt = (i: number, name = nameAt(recordOf(i).nameOff)): GoFunction => {
    const f = { name, entry: entryOf(i), end: entryOf(i + 1) };
    if (f.end < f.entry) fail(`is not sorted at ${f.name}`);
    return f;
  };
  let all: GoFunction[] | undefined;
  return {
    layout,
    quantum,
    get functions() {
      if (!all) {
        all = new Array(nfunc);
        for (let i = 0; i < nfunc; i++) all[i] = functionAt(i);
      }
      return all;
    },
    find(names) {
      // Names are compared as bytes in place: decoding every name costs more than the search.
      const wanted = [...new Set(names)].map((name) => ({ name, bytes: new TextEncoder().encode(name + "\0") }));
      const out = new Map<string, GoFunction>();
      for (let i = 0; i < nfunc && out.size < wanted.length; i++) {
        const start = funcnameOffset + recordOf(i).nameOff;
        if (start < 0 || start >= tab.length) fail("has a name outside itself");
        for (const w of wanted) {
          if (start + w.bytes.length > tab.length || tab[start] !== w.bytes[0]) continue;
          let k = 1;
          while (k < w.bytes.length && tab[start + k] === w.bytes[k]) k++;
          if (k === w.bytes.length) out.set(w.name, functionAt(i, w.name));
        }
      }
      return out;
    },
  };
}
