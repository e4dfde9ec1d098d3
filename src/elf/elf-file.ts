// Just enough of ELF to find a program's or library's symbols: the header, the section
// table, and the symbol tables (.dynsym, and .symtab when present). Reads the parts it needs
// with positioned reads, never the whole file (node's executable is 100 MB).
import { closeSync, openSync, readSync } from "node:fs";

export class ElfError extends Error {}

export interface ElfSymbol {
  name: string;
  /** Virtual address (st_value). */
  value: number;
  /** Where `value` is in the file (what a uprobe is placed by); NaN when not defined here. */
  fileOffset: number;
  size: number;
  /** Defined in this file (not an import). */
  defined: boolean;
  /** STT_FUNC. */
  isFunction: boolean;
}

export interface ElfSection {
  name: string;
  type: number;
  addr: number;
  offset: number;
  size: number;
  link: number;
  entsize: number;
}

export interface ElfFile {
  readonly path: string;
  readonly sections: ElfSection[];
  /** The symbols of `table` (".dynsym" or ".symtab") whose names are in `names`. */
  symbols(names: Set<string>, table?: ".dynsym" | ".symtab"): Map<string, ElfSymbol>;
  /** `length` bytes at file offset `offset`. */
  read(offset: number, length: number): Uint8Array;
  close(): void;
}

const SHT_SYMTAB = 2;
const SHT_DYNSYM = 11;
const STT_FUNC = 2;
const SYM_SIZE = 24;

/** Opens a 64-bit little-endian ELF file (x86-64, arm64); anything else is an ElfError. */
export function openElf(path: string): ElfFile {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (e) {
    throw new ElfError(`${path}: ${(e as Error).message}`);
  }
  try {
    const read = (offset: number, length: number): Uint8Array => {
      const out = new Uint8Array(length);
      let got = 0;
      while (got < length) {
        const n = readSync(fd, out, got, length - got, offset + got);
        if (n <= 0) throw new ElfError(`${path}: truncated (wanted ${length} bytes at ${offset})`);
        got += n;
      }
      return out;
    };
    const head = read(0, 64);
    if (head[0] !== 0x7f || head[1] !== 0x45 || head[2] !== 0x4c || head[3] !== 0x46) throw new ElfError(`${path}: not an ELF file`);
    if (head[4] !== 2 || head[5] !== 1) throw new ElfError(`${path}: not a 64-bit little-endian ELF file`);
    const hv = new DataView(head.buffer);
    const shoff = Number(hv.getBigUint64(0x28, true));
    const shentsize = hv.getUint16(0x3a, true);
    const shnum = hv.getUint16(0x3c, true);
    const shstrndx = hv.getUint16(0x3e, true);
    if (shoff === 0 || shnum === 0) throw new ElfError(`${path}: no section table`);
    if (shentsize < 64 || shstrndx >= shnum) throw new ElfError(`${path}: malformed section table`);
    const table = read(shoff, shentsize * shnum);
    const tv = new DataView(table.buffer);
    const raw = Array.from({ length: shnum }, (_, i) => {
      const o = i * shentsize;
      return {
        nameOff: tv.getUint32(o, true),
        type: tv.getUint32(o + 4, true),
        addr: Number(tv.getBigUint64(o + 0x10, true)),
        offset: Number(tv.getBigUint64(o + 0x18, true)),
        size: Number(tv.getBigUint64(o + 0x20, true)),
        link: tv.getUint32(o + 0x28, true),
        entsize: Number(tv.getBigUint64(o + 0x38, true)),
      };
    });
    const names = read(raw[shstrndx]!.offset, raw[shstrndx]!.size);
    const sections: ElfSection[] = raw.map((s) => ({ ...s, name: cString(names, s.nameOff) }));

    return {
      path,
      sections,
      read,
      symbols(wanted, tableName = ".dynsym") {
        const found = new Map<string, ElfSymbol>();
        const type = tableName === ".dynsym" ? SHT_DYNSYM : SHT_SYMTAB;
        const sec = sections.find((s) => s.type === type);
        if (!sec || sec.link >= sections.length) return found;
        const strtab = sections[sec.link]!;
        const strs = read(strtab.offset, strtab.size);
        const syms = read(sec.offset, sec.size);
        const sv = new DataView(syms.buffer);
        const maxLen = Math.max(...[...wanted].map((w) => w.length));
        for (let o = 0; o + SYM_SIZE <= syms.length; o += SYM_SIZE) {
          const nameOff = sv.getUint32(o, true);
          if (nameOff === 0 || nameOff >= strs.length) continue;
          // Names longer than the longest wanted one are cut short: they cannot match.
          const name = cString(strs, nameOff, maxLen + 1);
          if (!wanted.has(name)) continue;
          const info = syms[o + 4]!;
          const shndx = sv.getUint16(o + 6, true);
          const value = Number(sv.getBigUint64(o + 8, true));
          const home = shndx !== 0 && shndx < sections.length ? sections[shndx]! : undefined;
          found.set(name, {
            name,
            value,
            fileOffset: home ? value - home.addr + home.offset : NaN,
            size: Number(sv.getBigUint64(o + 16, true)),
            defined: shndx !== 0,
            isFunction: (info & 0xf) === STT_FUNC,
          });
        }
        return found;
      },
      close() {
        closeSync(fd);
      },
    };
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

function cString(bytes: Uint8Array, offset: number, max = 4096): string {
  let end = offset;
  const limit = Math.min(bytes.length, offset + max);
  while (end < limit && bytes[end] !== 0) end++;
  return new TextDecoder("latin1").decode(bytes.subarray(offset, end));
}
