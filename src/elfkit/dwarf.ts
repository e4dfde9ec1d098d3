// Struct layouts from DWARF: the byte offset of each member of the structs asked for, read
// from .debug_info and .debug_abbrev (DWARF 2 to 5; sections compressed with SHF_COMPRESSED
// or in the older .zdebug_* form are inflated first). Only what struct offsets need is
// decoded: each compile unit's abbreviations, the DIE tree, and of each DIE only its name
// and member location; every other attribute is skipped by its form. A unit whose name is
// not wanted is skipped whole, by its length. Corrupt input is a DwarfError, never a hang.
import { inflateSync } from "node:zlib";
import type { ElfFile, ElfSection } from "./elf.ts";

export class DwarfError extends Error {}

export interface DwarfStruct {
  name: string;
  /** DW_AT_byte_size, when given. */
  size: number | undefined;
  /** Member name -> byte offset. */
  members: Map<string, number>;
}

const SHF_COMPRESSED = 0x800;
const ELFCOMPRESS_ZLIB = 1;

const TAG_COMPILE_UNIT = 0x11;
const TAG_STRUCTURE_TYPE = 0x13;
const TAG_MEMBER = 0x0d;
const AT_NAME = 0x03;
const AT_BYTE_SIZE = 0x0b;
const AT_DATA_MEMBER_LOCATION = 0x38;
const FORM_STRING = 0x08;
const FORM_STRP = 0x0e;
const FORM_LINE_STRP = 0x1f;
const FORM_INDIRECT = 0x16;
const FORM_IMPLICIT_CONST = 0x21;
const OP_PLUS_UCONST = 0x23;

interface Abbrev {
  tag: number;
  children: boolean;
  attrs: { name: number; form: number; implicit: number }[];
}

/**
 * The structs named in `names` with their members' offsets; undefined when the file has no
 * DWARF. With `units`, only compile units of those names are read (Go names a unit by its
 * package path: "runtime", "net", "crypto/tls").
 */
export function readDwarfStructs(elf: ElfFile, names: Iterable<string>, opts: { units?: Iterable<string> } = {}): Map<string, DwarfStruct> | undefined {
  const info = debugSection(elf, "info");
  const abbrev = debugSection(elf, "abbrev");
  if (!info || !abbrev) return undefined;
  return parseDwarfStructs({ info, abbrev, str: debugSection(elf, "str"), lineStr: debugSection(elf, "line_str") }, names, { ...opts, path: elf.path });
}

/** The DWARF sections, inflated. */
export interface DwarfSections {
  info: Uint8Array;
  abbrev: Uint8Array;
  str?: Uint8Array;
  lineStr?: Uint8Array;
}

/** readDwarfStructs over sections already in memory (`path` is used in errors). */
export function parseDwarfStructs(sections: DwarfSections, names: Iterable<string>, opts: { units?: Iterable<string>; path?: string } = {}): Map<string, DwarfStruct> {
  const { info, abbrev, str, lineStr } = sections;
  const path = opts.path ?? "DWARF";
  const wanted = new Set(names);
  const units = opts.units ? new Set(opts.units) : undefined;
  const found = new Map<string, DwarfStruct>();
  const fail = (why: string): never => {
    throw new DwarfError(`${path}: .debug_info ${why}`);
  };

  const r = new Reader(info, fail);
  const abbrevCache = new Map<number, Map<number, Abbrev>>();
  while (r.pos < info.length && found.size < wanted.size) {
    const unitStart = r.pos;
    let length = r.u32();
    let offsetSize = 4;
    if (length === 0xffffffff) {
      length = r.u64();
      offsetSize = 8;
    } else if (length >= 0xfffffff0) fail(`has a reserved unit length at ${unitStart}`);
    const unitEnd = r.pos + length;
    if (unitEnd > info.length) fail(`has a unit longer than itself at ${unitStart}`);
    const version = r.u16();
    if (version < 2 || version > 5) fail(`has DWARF version ${version} at ${unitStart}`);
    let addrSize: number;
    let abbrevOffset: number;
    if (version >= 5) {
      const unitType = r.u8();
      addrSize = r.u8();
      abbrevOffset = r.offset(offsetSize);
      if (unitType === 2 /* type */ || unitType === 6 /* split type */) r.skip(8 + offsetSize);
      else if (unitType === 4 || unitType === 5) r.skip(8); // skeleton, split compile: dwo id
    } else {
      abbrevOffset = r.offset(offsetSize);
      addrSize = r.u8();
    }
    let abbrevs = abbrevCache.get(abbrevOffset);
    if (!abbrevs) abbrevCache.set(abbrevOffset, (abbrevs = readAbbrevs(abbrev, abbrevOffset, fail)));
    const form = { offsetSize, addrSize, version };

    let depth = 0;
    let inStruct: DwarfStruct | undefined;
    let structDepth = -1;
    let first = true;
    while (r.pos < unitEnd) {
      const code = r.uleb();
      if (code === 0) {
        depth--;
        if (depth < 0) fail(`has an unbalanced tree at ${r.pos}`);
        if (inStruct && depth <= structDepth) inStruct = undefined;
        continue;
      }
      const a = abbrevs.get(code) ?? fail(`uses an unknown abbreviation ${code} at ${r.pos}`);
      let name: string | undefined;
      let byteSize: number | undefined;
      let location: number | undefined;
      for (const at of a.attrs) {
        let f = at.form;
        if (f === FORM_INDIRECT) f = r.uleb();
        if (at.name === AT_NAME && (f === FORM_STRING || f === FORM_STRP || f === FORM_LINE_STRP)) {
          name = f === FORM_STRING ? r.cstring() : cstringAt(f === FORM_STRP ? str : lineStr, r.offset(offsetSize), fail);
        } else if ((at.name === AT_DATA_MEMBER_LOCATION || at.name === AT_BYTE_SIZE) && a.tag !== TAG_COMPILE_UNIT) {
          const v = f === FORM_IMPLICIT_CONST ? at.implicit : readConstantOrLocation(r, f, form);
          if (at.name === AT_BYTE_SIZE) byteSize = v;
          else location = v;
        } else if (f !== FORM_IMPLICIT_CONST) skipForm(r, f, form, fail);
      }
      if (first) {
        first = false;
        if (a.tag === TAG_COMPILE_UNIT && units && !units.has(name ?? "")) {
          r.pos = unitEnd; // not a unit asked for
          break;
        }
      }
      if (inStruct && a.tag === TAG_MEMBER && depth === structDepth + 1 && name !== undefined && location !== undefined) {
        inStruct.members.set(name, location);
      }
      if (a.tag === TAG_STRUCTURE_TYPE && name !== undefined && wanted.has(name) && !found.has(name)) {
        inStruct = { name, size: byteSize, members: new Map() };
        found.set(name, inStruct);
        structDepth = depth;
        if (!a.children) inStruct = undefined;
      }
      if (a.children) depth++;
    }
    r.pos = unitEnd;
  }
  return found;
}

/** The bytes of .debug_NAME, inflated if compressed; undefined when absent. */
export function debugSection(elf: ElfFile, name: string): Uint8Array | undefined {
  const plain = elf.section(`.debug_${name}`);
  const old = plain ? undefined : elf.section(`.zdebug_${name}`);
  const sec: ElfSection | undefined = plain ?? old;
  if (!sec) return undefined;
  const bytes = elf.sectionBytes(sec);
  try {
    if (plain && sec.flags & SHF_COMPRESSED) {
      if (bytes.length < 24) throw new Error("truncated compression header");
      const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const type = dv.getUint32(0, true);
      if (type !== ELFCOMPRESS_ZLIB) throw new Error(`compression type ${type} is not zlib`);
      return checkedInflate(bytes.subarray(24), Number(dv.getBigUint64(8, true)));
    }
    if (old && bytes.length >= 12 && new TextDecoder().decode(bytes.subarray(0, 4)) === "ZLIB") {
      return checkedInflate(bytes.subarray(12), Number(new DataView(bytes.buffer, bytes.byteOffset + 4, 8).getBigUint64(0, false)));
    }
  } catch (e) {
    throw new DwarfError(`${elf.path}: ${sec.name}: ${(e as Error).message}`);
  }
  return bytes;
}

function checkedInflate(stream: Uint8Array, size: number): Uint8Array {
  // The declared size bounds the output: a corrupt header cannot make it inflate without end.
  if (!Number.isSafeInteger(size) || size > 1 << 30) throw new Error(`implausible uncompressed size ${size}`);
  const out = inflateSync(stream, { maxOutputLength: Math.max(size, 1) });
  if (out.length !== size) throw new Error(`inflates to ${out.length} bytes, not ${size}`);
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

function readAbbrevs(bytes: Uint8Array, offset: number, fail: (why: string) => never): Map<number, Abbrev> {
  const r = new Reader(bytes, (why) => fail(`abbreviations ${why}`));
  r.pos = offset;
  const out = new Map<number, Abbrev>();
  for (;;) {
    const code = r.uleb();
    if (code === 0) return out;
    const tag = r.uleb();
    const children = r.u8() !== 0;
    const attrs: Abbrev["attrs"] = [];
    for (;;) {
      const name = r.uleb();
      const form = r.uleb();
      const implicit = form === FORM_IMPLICIT_CONST ? r.sleb() : 0;
      if (name === 0 && form === 0) break;
      attrs.push({ name, form, implicit });
    }
    out.set(code, { tag, children, attrs });
  }
}

interface FormContext {
  offsetSize: number;
  addrSize: number;
  version: number;
}

/** A member location: a constant, or a location expression that is DW_OP_plus_uconst N. */
function readConstantOrLocation(r: Reader, form: number, ctx: FormContext): number | undefined {
  switch (form) {
    case 0x0b: return r.u8();
    case 0x05: return r.u16();
    case 0x06: return r.u32();
    case 0x07: return r.u64();
    case 0x0f: return r.uleb();
    case 0x0d: return r.sleb();
    case 0x18: // exprloc
    case 0x0a: { // block1 (DWARF 2/3)
      const len = form === 0x18 ? r.uleb() : r.u8();
      const end = r.pos + len;
      let v: number | undefined;
      if (len > 0 && r.u8() === OP_PLUS_UCONST) v = r.uleb();
      r.pos = end;
      return v;
    }
    default:
      skipForm(r, form, ctx, (why) => {
        throw new DwarfError(why);
      });
      return undefined;
  }
}

function skipForm(r: Reader, form: number, ctx: FormContext, fail: (why: string) => never): void {
  switch (form) {
    case 0x01: r.skip(ctx.addrSize); return; // addr
    case 0x03: r.skip(r.u16()); return; // block2
    case 0x04: r.skip(r.u32()); return; // block4
    case 0x05: case 0x12: case 0x26: case 0x2a: r.skip(2); return; // data2, ref2, strx2, addrx2
    case 0x06: case 0x13: case 0x1c: case 0x28: case 0x2c: r.skip(4); return; // data4, ref4, ref_sup4, strx4, addrx4
    case 0x07: case 0x14: case 0x20: r.skip(8); return; // data8, ref8, ref_sig8
    case 0x08: r.cstring(); return; // string
    case 0x09: case 0x18: r.skip(r.uleb()); return; // block, exprloc
    case 0x0a: r.skip(r.u8()); return; // block1
    case 0x0b: case 0x0c: case 0x11: case 0x25: case 0x29: r.skip(1); return; // data1, flag, ref1, strx1, addrx1
    case 0x0d: r.sleb(); return; // sdata
    case 0x0e: case 0x17: case 0x1d: case 0x1f: r.skip(ctx.offsetSize); return; // strp, sec_offset, strp_sup, line_strp
    case 0x0f: case 0x15: case 0x1a: case 0x1b: case 0x22: case 0x23: r.uleb(); return; // udata, ref_udata, strx, addrx, loclistx, rnglistx
    case 0x10: r.skip(ctx.version <= 2 ? ctx.addrSize : ctx.offsetSize); return; // ref_addr
    case 0x19: case 0x21: return; // flag_present, implicit_const
    case 0x1e: r.skip(16); return; // data16
    case 0x27: case 0x2b: r.skip(3); return; // strx3, addrx3
    default: fail(`uses an unknown attribute form 0x${form.toString(16)}`);
  }
}

function cstringAt(bytes: Uint8Array | undefined, offset: number, fail: (why: string) => never): string {
  if (!bytes || offset >= bytes.length) fail(`names a string outside the string table (${offset})`);
  let end = offset;
  while (end < bytes!.length && bytes![end] !== 0) end++;
  return utf8.decode(bytes!.subarray(offset, end));
}

// Go writes names in UTF-8 ("strings.span·1").
const utf8 = new TextDecoder();

/** A bounds-checked cursor over little-endian DWARF data. */
class Reader {
  pos = 0;
  private readonly dv: DataView;
  constructor(
    private readonly bytes: Uint8Array,
    private readonly fail: (why: string) => never,
  ) {
    this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  private need(n: number): number {
    const at = this.pos;
    if (n < 0 || at + n > this.bytes.length) this.fail(`is truncated at ${at}`);
    this.pos = at + n;
    return at;
  }
  skip(n: number): void {
    this.need(n);
  }
  u8(): number {
    return this.bytes[this.need(1)]!;
  }
  u16(): number {
    return this.dv.getUint16(this.need(2), true);
  }
  u32(): number {
    return this.dv.getUint32(this.need(4), true);
  }
  u64(): number {
    const at = this.need(8);
    return this.dv.getUint32(at, true) + this.dv.getUint32(at + 4, true) * 2 ** 32;
  }
  offset(size: number): number {
    return size === 8 ? this.u64() : this.u32();
  }
  uleb(): number {
    let v = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      const b = this.u8();
      v += (b & 0x7f) * mul;
      if (!(b & 0x80)) return v;
      mul *= 128;
    }
    return this.fail(`has an over-long number at ${this.pos}`);
  }
  sleb(): number {
    let v = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      const b = this.u8();
      v += (b & 0x7f) * mul;
      mul *= 128;
      if (!(b & 0x80)) return b & 0x40 ? v - mul : v;
    }
    return this.fail(`has an over-long number at ${this.pos}`);
  }
  cstring(): string {
    const start = this.pos;
    let end = start;
    while (end < this.bytes.length && this.bytes[end] !== 0) end++;
    if (end >= this.bytes.length) this.fail(`has an unterminated string at ${start}`);
    this.pos = end + 1;
    return utf8.decode(this.bytes.subarray(start, end));
  }
}
