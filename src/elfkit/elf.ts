// elfkit's ELF reader: the header, the section and program header tables, the symbol tables
// (.dynsym and .symtab), and virtual address -> file offset. 64-bit little-endian only
// (x86-64, arm64). Reads the parts it needs with positioned reads, never the whole file
// (node's executable is 100 MB). Every size and offset read from the file is checked against
// the file's size before use: a corrupt file is an ElfError, never a hang or a huge read.
// elfkit imports nothing else of tapwire.
import { closeSync, fstatSync, openSync, readSync } from "node:fs";

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
  /** SHF_* (SHF_COMPRESSED = 0x800: the bytes start with an Elf64_Chdr). */
  flags: number;
  addr: number;
  offset: number;
  size: number;
  link: number;
  entsize: number;
}

export interface ElfSegment {
  type: number;
  flags: number;
  offset: number;
  vaddr: number;
  filesz: number;
  memsz: number;
}

export interface ElfDynamic {
  needed: string[];
  /** Colon-separated lists as written ($ORIGIN not expanded); undefined when absent. */
  runpath?: string;
  rpath?: string;
}

export type ElfMachine = "x86-64" | "arm64" | "other";

export interface ElfFile {
  readonly path: string;
  readonly size: number;
  readonly machine: ElfMachine;
  /** ET_EXEC, ET_DYN (PIE executables and shared libraries)... */
  readonly type: number;
  readonly sections: ElfSection[];
  readonly segments: ElfSegment[];
  section(name: string): ElfSection | undefined;
  /** The bytes of a section (empty for SHT_NOBITS). */
  sectionBytes(section: ElfSection): Uint8Array;
  /** File offset of a virtual address, from the loadable segments; undefined when not in the file. */
  fileOffset(vaddr: number): number | undefined;
  /** The symbols of `table` (".dynsym" or ".symtab") whose names are in `names`. The dynamic
   * table is searched through its GNU hash table when the file has one (node's holds 100,000
   * names: a hash lookup reads a few entries where a scan reads them all). The hash table
   * holds defined symbols only: there, a name the file imports is not found. */
  symbols(names: Set<string>, table?: ".dynsym" | ".symtab"): Map<string, ElfSymbol>;
  /** What the dynamic loader reads: DT_NEEDED names, DT_RUNPATH and DT_RPATH (empty when static). */
  dynamic(): ElfDynamic;
  /** `length` bytes at file offset `offset`. */
  read(offset: number, length: number): Uint8Array;
  close(): void;
}

const SHT_SYMTAB = 2;
const SHT_NOBITS = 8;
const SHT_DYNSYM = 11;
const SHT_DYNAMIC = 6;
const SHT_GNU_HASH = 0x6ffffff6;
const DT_NEEDED = 1;
const DT_RPATH = 15;
const DT_RUNPATH = 29;
const PT_LOAD = 1;
const EM_X86_64 = 62;
const EM_AARCH64 = 183;
const STT_FUNC = 2;
const SYM_SIZE = 24;

/** Opens a 64-bit little-endian ELF file (x86-64, arm64); anything else is an ElfError. */
export function openElf(path: string): ElfFile {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ElfError(`${path}: ${code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : code === "EISDIR" ? "a directory, not a file" : (e as Error).message}`);
  }
  try {
    const size = fstatSync(fd).size;
    return parseElf(path, size, (out, offset) => readSync(fd, out, 0, out.length, offset), () => closeSync(fd));
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

/** The same over bytes in memory (`name` is used in errors). */
export function elfFromBytes(bytes: Uint8Array, name: string): ElfFile {
  return parseElf(name, bytes.length, (out, offset) => (out.set(bytes.subarray(offset, offset + out.length)), out.length), () => {});
}

function parseElf(path: string, size: number, readInto: (out: Uint8Array, offset: number) => number, close: () => void): ElfFile {
  {
    const read = (offset: number, length: number): Uint8Array => {
      if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > size) {
        throw new ElfError(`${path}: truncated or corrupt (wanted ${length} bytes at ${offset} of ${size})`);
      }
      const out = new Uint8Array(length);
      let got = 0;
      while (got < length) {
        const n = readInto(out.subarray(got), offset + got);
        if (n <= 0) throw new ElfError(`${path}: truncated (wanted ${length} bytes at ${offset})`);
        got += n;
      }
      return out;
    };
    const head = new Uint8Array(64);
    head.set(read(0, Math.min(64, size)));
    if (size < 4 || head[0] !== 0x7f || head[1] !== 0x45 || head[2] !== 0x4c || head[3] !== 0x46) throw new ElfError(`${path}: not an ELF file`);
    if (size < 64) throw new ElfError(`${path}: truncated ELF header`);
    if (head[4] !== 2 || head[5] !== 1) throw new ElfError(`${path}: not a 64-bit little-endian ELF file`);
    const hv = new DataView(head.buffer);
    const type = hv.getUint16(0x10, true);
    const em = hv.getUint16(0x12, true);
    const machine: ElfMachine = em === EM_X86_64 ? "x86-64" : em === EM_AARCH64 ? "arm64" : "other";
    const phoff = Number(hv.getBigUint64(0x20, true));
    const phentsize = hv.getUint16(0x36, true);
    const phnum = hv.getUint16(0x38, true);
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
        flags: Number(tv.getBigUint64(o + 8, true)),
        addr: Number(tv.getBigUint64(o + 0x10, true)),
        offset: Number(tv.getBigUint64(o + 0x18, true)),
        size: Number(tv.getBigUint64(o + 0x20, true)),
        link: tv.getUint32(o + 0x28, true),
        entsize: Number(tv.getBigUint64(o + 0x38, true)),
      };
    });
    const names = read(raw[shstrndx]!.offset, raw[shstrndx]!.size);
    const sections: ElfSection[] = raw.map((s) => ({ ...s, name: cString(names, s.nameOff) }));
    const segments: ElfSegment[] = [];
    if (phoff && phnum) {
      if (phentsize < 56) throw new ElfError(`${path}: malformed program header table`);
      const ph = read(phoff, phentsize * phnum);
      const pv = new DataView(ph.buffer);
      for (let i = 0; i < phnum; i++) {
        const o = i * phentsize;
        segments.push({
          type: pv.getUint32(o, true),
          flags: pv.getUint32(o + 4, true),
          offset: Number(pv.getBigUint64(o + 8, true)),
          vaddr: Number(pv.getBigUint64(o + 0x10, true)),
          filesz: Number(pv.getBigUint64(o + 0x20, true)),
          memsz: Number(pv.getBigUint64(o + 0x28, true)),
        });
      }
    }

    const symbolAt = (sv: DataView, o: number, name: string): ElfSymbol => {
      const info = sv.getUint8(o + 4);
      const shndx = sv.getUint16(o + 6, true);
      const value = Number(sv.getBigUint64(o + 8, true));
      const home = shndx !== 0 && shndx < sections.length ? sections[shndx]! : undefined;
      return {
        name,
        value,
        fileOffset: home ? value - home.addr + home.offset : NaN,
        size: Number(sv.getBigUint64(o + 16, true)),
        defined: shndx !== 0,
        isFunction: (info & 0xf) === STT_FUNC,
      };
    };

    /** The wanted symbols through .gnu.hash; undefined when the table is malformed (then the
     * caller scans). Layout: nbuckets, symoffset, bloom words, bloom shift; the bloom filter
     * (skipped: it only saves reads); nbuckets first-symbol indexes; one hash per symbol from
     * symoffset on, the low bit marking the end of a bucket's chain. */
    const gnuHashLookup = (hash: ElfSection, dynsym: ElfSection, strtab: ElfSection, wanted: Set<string>): Map<string, ElfSymbol> | undefined => {
      if (hash.size < 16) return undefined;
      const table = read(hash.offset, hash.size);
      const hv = new DataView(table.buffer);
      const nbuckets = hv.getUint32(0, true);
      const symoffset = hv.getUint32(4, true);
      const bloomWords = hv.getUint32(8, true);
      const buckets = 16 + bloomWords * 8;
      const chains = buckets + nbuckets * 4;
      const nsyms = Math.floor(dynsym.size / SYM_SIZE);
      if (nbuckets === 0 || chains > table.length) return undefined;
      const found = new Map<string, ElfSymbol>();
      for (const name of wanted) {
        const bytes = Buffer.from(name, "latin1");
        let h = 5381;
        for (const c of bytes) h = (Math.imul(h, 33) + c) >>> 0;
        let i = hv.getUint32(buckets + (h % nbuckets) * 4, true);
        if (i === 0) continue;
        for (; i < nsyms; i++) {
          const at = chains + (i - symoffset) * 4;
          if (i < symoffset || at + 4 > table.length) return undefined;
          const h2 = hv.getUint32(at, true);
          if ((h2 | 1) === (h | 1)) {
            const sym = read(dynsym.offset + i * SYM_SIZE, SYM_SIZE);
            const sv = new DataView(sym.buffer);
            const nameOff = sv.getUint32(0, true);
            if (nameOff + bytes.length < strtab.size) {
              const candidate = read(strtab.offset + nameOff, bytes.length + 1);
              if (candidate[bytes.length] === 0 && Buffer.from(candidate.buffer, 0, bytes.length).equals(bytes)) {
                found.set(name, symbolAt(sv, 0, name));
                break;
              }
            }
          }
          if (h2 & 1) break;
        }
      }
      return found;
    };

    return {
      path,
      size,
      machine,
      type,
      sections,
      segments,
      read,
      section: (name) => sections.find((s) => s.name === name),
      sectionBytes: (sec) => (sec.type === SHT_NOBITS ? new Uint8Array(0) : read(sec.offset, sec.size)),
      fileOffset(vaddr) {
        for (const seg of segments) {
          if (seg.type === PT_LOAD && vaddr >= seg.vaddr && vaddr < seg.vaddr + seg.filesz) return vaddr - seg.vaddr + seg.offset;
        }
        return undefined;
      },
      symbols(wanted, tableName = ".dynsym") {
        const type = tableName === ".dynsym" ? SHT_DYNSYM : SHT_SYMTAB;
        const sec = sections.find((s) => s.type === type);
        if (!sec || sec.link >= sections.length) return new Map();
        const strtab = sections[sec.link]!;
        const hash = type === SHT_DYNSYM ? sections.find((s) => s.type === SHT_GNU_HASH && sections[s.link] === sec) : undefined;
        if (hash) {
          const byHash = gnuHashLookup(hash, sec, strtab, wanted);
          if (byHash) return byHash;
        }
        const found = new Map<string, ElfSymbol>();
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
          found.set(name, symbolAt(sv, o, name));
        }
        return found;
      },
      dynamic() {
        const out: ElfDynamic = { needed: [] };
        const sec = sections.find((s) => s.type === SHT_DYNAMIC);
        if (!sec || sec.link >= sections.length || sec.size > 1 << 20) return out;
        const strtab = sections[sec.link]!;
        if (strtab.size > 64 << 20) return out;
        const strs = read(strtab.offset, strtab.size);
        const raw = read(sec.offset, sec.size);
        const dv = new DataView(raw.buffer);
        for (let o = 0; o + 16 <= raw.length; o += 16) {
          const tag = Number(dv.getBigInt64(o, true));
          if (tag === 0) break;
          if (tag !== DT_NEEDED && tag !== DT_RPATH && tag !== DT_RUNPATH) continue;
          const at = Number(dv.getBigUint64(o + 8, true));
          if (at >= strs.length) continue;
          const value = cString(strs, at);
          if (tag === DT_NEEDED) out.needed.push(value);
          else if (tag === DT_RUNPATH) out.runpath = value;
          else out.rpath = value;
        }
        return out;
      },
      close,
    };
  }
}

function cString(bytes: Uint8Array, offset: number, max = 4096): string {
  let end = offset;
  const limit = Math.min(bytes.length, offset + max);
  while (end < limit && bytes[end] !== 0) end++;
  return new TextDecoder("latin1").decode(bytes.subarray(offset, end));
}

/** The first match of `pattern` at an occurrence of `mark` in the file's .rodata (version
 * strings live there). Read 1 MiB at a time and searched natively: node's .rodata is tens of
 * MB with OpenSSL's version 8 MB in. `pattern` sees up to 80 bytes from the mark. */
export function searchRodata(elf: ElfFile, mark: Buffer, pattern: RegExp): RegExpExecArray | undefined {
  const rodata = elf.sections.find((s) => s.name === ".rodata");
  if (!rodata) return undefined;
  const CHUNK = 1 << 20;
  const OVERLAP = 128; // a string across two chunks is whole in the second
  for (let start = 0; start < rodata.size; start += CHUNK - OVERLAP) {
    const bytes = Buffer.from(elf.read(rodata.offset + start, Math.min(CHUNK, rodata.size - start)));
    for (let at = bytes.indexOf(mark); at >= 0; at = bytes.indexOf(mark, at + 1)) {
      const m = pattern.exec(bytes.toString("latin1", at, at + 80));
      if (m) return m;
    }
    if (start + CHUNK >= rodata.size) break;
  }
  return undefined;
}
