// What the Go probes need to know of a binary's runtime data: the itab of
// (net.Conn, *net.TCPConn) — the one value of tls.Conn's net.Conn field whose data is a
// *net.TCPConn — and the struct offsets from tls.Conn to the socket's fd. All of it is read
// from the binary itself, stripped or not, whatever its Go version (1.17+):
//
//  - moduledata is found the way the runtime finds it: a pointer to the pclntab header (its
//    first field). Which of its fields are text, types and itablinks is read from what they
//    point at — the .text, .noptrdata, .rodata and .itablink sections (section headers stay
//    in stripped binaries) — since fields were added between releases (1.20: coverage).
//  - The itab is found through moduledata's itablinks, each itab's types named through
//    moduledata.types.
//  - The struct offsets come from the runtime type information the program carries for its
//    own use (the garbage collector and reflect need it): *net.TCPConn → TCPConn.conn → fd
//    → *netFD → pfd → Sysfd, and the tls.Conn of any itab of *tls.Conn → its conn field.
//
// The layout of type descriptors themselves (internal/abi.Type, StructType, StructField) is
// the Go ABI, unchanged since 1.14 but for StructField's offset (1.19: no longer shifted to
// hold the embedded bit); a wrong guess fails to find the names it looks for and is said.
// DWARF, when the binary has it, is used only when the type information cannot be read;
// tests hold what is read here against DWARF for every Go version on the test machines.
// In PIE binaries pointers are filled in by R_*_RELATIVE relocations at load, so they
// are read through the relocation table.
import type { ElfFile, ElfSegment } from "../elfkit/elf.ts";
import { readDwarfStructs } from "../elfkit/dwarf.ts";

export interface GoConnLayout {
  /** tls.Conn.conn (net.Conn: itab, data). */
  tlsConnConn: number;
  /** *net.TCPConn -> conn.fd (*netFD). */
  tcpConnFd: number;
  /** netFD.pfd.Sysfd. */
  netFdSysfd: number;
}

export interface RuntimeOffsets {
  /** moduledata fields. */
  mdText: number;
  mdTypes: number;
  mdItablinks: number;
  /** _type.tflag and _type.str. */
  typeTflag: number;
  typeStr: number;
  conn: GoConnLayout;
}

/** internal/abi.Type (runtime._type before 1.21) on 64-bit targets. */
const TYPE_TFLAG = 20;
const TYPE_KIND = 23;
const TYPE_STR = 40;
const TYPE_SIZE = 48;
const KIND_MASK = 0x1f;
const KIND_PTR = 22;
const KIND_STRUCT = 25;
/** StructType: Type, PkgPath (a name), Fields []StructField; a StructField is Name, Typ, Offset. */
const STRUCT_FIELDS = TYPE_SIZE + 8;
const FIELD_SIZE = 24;
const R_X86_64_RELATIVE = 8;
const R_AARCH64_RELATIVE = 1027;
const PT_LOAD = 1;
const latin1 = new TextDecoder("latin1");
const TFLAG_EXTRA_STAR = 2;

export class GoLayoutError extends Error {}

export interface GoRuntimeLayout {
  /** Link-time address of the (net.Conn, *net.TCPConn) itab; undefined if the binary has none. */
  tcpConnItab: number | undefined;
  conn: GoConnLayout;
  /** Where the struct offsets came from: "type information", or "DWARF (...why not the former)". */
  source: string;
}

/** The offsets from DWARF; undefined when the binary has no DWARF or lacks one of them. */
export function dwarfOffsets(elf: ElfFile): RuntimeOffsets | undefined {
  // Go 1.21 renamed runtime._type to internal/abi.Type (and its fields to TFlag, Str).
  const structs = readDwarfStructs(
    elf,
    ["runtime.moduledata", "runtime._type", "internal/abi.Type", "crypto/tls.Conn", "net.TCPConn", "net.conn", "net.netFD", "internal/poll.FD"],
    { units: ["runtime", "internal/abi", "crypto/tls", "net", "internal/poll"] },
  );
  if (!structs) return undefined;
  const member = (struct: string, ...names: string[]) => {
    const members = structs.get(struct)?.members;
    for (const n of names) if (members?.has(n)) return members.get(n)!;
    return undefined;
  };
  const type = structs.has("runtime._type") ? "runtime._type" : "internal/abi.Type";
  const tcpConn = member("net.TCPConn", "conn");
  const connFd = member("net.conn", "fd");
  const pfd = member("net.netFD", "pfd");
  const sysfd = member("internal/poll.FD", "Sysfd");
  const o = {
    mdText: member("runtime.moduledata", "text"),
    mdTypes: member("runtime.moduledata", "types"),
    mdItablinks: member("runtime.moduledata", "itablinks"),
    typeTflag: member(type, "tflag", "TFlag"),
    typeStr: member(type, "str", "Str"),
    tlsConnConn: member("crypto/tls.Conn", "conn"),
    tcpConnFd: tcpConn === undefined || connFd === undefined ? undefined : tcpConn + connFd,
    netFdSysfd: pfd === undefined || sysfd === undefined ? undefined : pfd + sysfd,
  };
  if (Object.values(o).some((v) => v === undefined)) return undefined;
  return {
    mdText: o.mdText!,
    mdTypes: o.mdTypes!,
    mdItablinks: o.mdItablinks!,
    typeTflag: o.typeTflag!,
    typeStr: o.typeStr!,
    conn: { tlsConnConn: o.tlsConnConn!, tcpConnFd: o.tcpConnFd!, netFdSysfd: o.netFdSysfd! },
  };
}

export function goRuntimeLayout(elf: ElfFile, release: [number, number], pclntabVaddr: number): GoRuntimeLayout {
  let types: ReturnType<typeof goTypes>;
  try {
    types = goTypes(elf, release, pclntabVaddr);
  } catch (e) {
    if (!(e instanceof GoLayoutError)) throw e;
    return withoutTypes(elf, e.message.replace(`${elf.path}: `, ""));
  }
  let tcpConnItab: number | undefined;
  let tcpConnType: number | undefined;
  let tlsConnType: number | undefined;
  for (const { itab, inter, typ } of types.itabs()) {
    const name = types.name(typ);
    // Another package also named tls (uTLS) has a *tls.Conn too: the one of crypto/tls.
    if (name === "*tls.Conn" && tlsConnType === undefined && types.pkgPathOf(typ) === "crypto/tls") tlsConnType = typ;
    if (name === "*net.TCPConn" && types.pkgPathOf(typ) === "net") {
      tcpConnType ??= typ;
      if (tcpConnItab === undefined && types.name(inter) === "net.Conn") tcpConnItab = itab;
    }
    if (tcpConnItab !== undefined && tlsConnType !== undefined) break;
  }
  const fromTypes = connFromTypes(types, tcpConnType, tlsConnType);
  if (typeof fromTypes !== "string") return { tcpConnItab, conn: fromTypes, source: "type information" };
  return { ...withoutTypes(elf, fromTypes), tcpConnItab: dwarfOffsets(elf) ? tcpConnItab : undefined };
}

/** The offsets from DWARF when the type information could not give them; else none, and the
 * socket is not followed (the flows have no endpoints, the plaintext is still read). */
function withoutTypes(elf: ElfFile, why: string): GoRuntimeLayout {
  const fromDwarf = dwarfOffsets(elf);
  if (fromDwarf) return { tcpConnItab: undefined, conn: fromDwarf.conn, source: `DWARF (type information: ${why})` };
  return { tcpConnItab: undefined, conn: { tlsConnConn: 0, tcpConnFd: 0, netFdSysfd: 0 }, source: `none (${why}): endpoints unknown` };
}

/** The fields (name → offset) of the struct a pointer type of an itab points to, as the
 * binary's type information says ("*tls.Conn" → tls.Conn's); a string says why not. For
 * tests and tapwire inspect: held against DWARF, field by field. */
export function structFieldsFromTypes(elf: ElfFile, release: [number, number], pclntabVaddr: number, pointerType: string): Map<string, number> | string {
  const types = goTypes(elf, release, pclntabVaddr);
  for (const { typ } of types.itabs()) {
    if (types.name(typ) !== pointerType) continue;
    const elem = types.elem(typ, pointerType.slice(1));
    if (typeof elem === "string") return elem;
    const fields = types.fields(elem, pointerType.slice(1));
    return typeof fields === "string" ? fields : new Map(fields.map((f) => [f.name, f.offset]));
  }
  return `no itab of ${pointerType}`;
}

interface StructField {
  name: string;
  typ: number;
  offset: number;
}

/** The binary's runtime type information: its itabs, and type descriptors read by address. */
function goTypes(elf: ElfFile, release: [number, number], pclntabVaddr: number) {
  const mem = memoryReader(elf);
  const section = (name: string) => elf.section(name) ?? elf.section(`.data.rel.ro${name}`);
  const [text, noptrdata, rodata, itablink] = [".text", ".noptrdata", ".rodata", ".itablink"].map(section);
  if (!text || !noptrdata || !rodata || !itablink) throw new GoLayoutError(`${elf.path}: no ${!text ? ".text" : !noptrdata ? ".noptrdata" : !rodata ? ".rodata" : ".itablink"} section`);
  // Type descriptors hold pointers: in a PIE binary they are in .data.rel.ro, which begins with them.
  const typesAt = [rodata.addr, elf.section(".data.rel.ro")?.addr].filter((a): a is number => a !== undefined);

  // moduledata: a pointer to the pclntab header, whose fields point where the sections are.
  let md: number | undefined;
  let fields: { mdText: number; mdTypes: number; mdItablinks: number } | undefined;
  for (const at of mem.pointersTo(pclntabVaddr)) {
    fields = moduledataFields(mem, at, { text: text.addr, noptrdata: noptrdata.addr, types: typesAt, itablink: itablink.addr, itablinkSize: itablink.size });
    if (fields) {
      md = at;
      break;
    }
  }
  if (md === undefined || !fields) throw new GoLayoutError(`${elf.path}: runtime moduledata not found`);
  const types = mem.pointer(md + fields.mdTypes);
  const itablinks = mem.pointer(md + fields.mdItablinks);
  const nItabs = mem.u64(md + fields.mdItablinks + 8);
  // Before 1.19 a field's offset was stored shifted left by one, its low bit saying embedded.
  const shifted = release[0] === 1 && release[1] < 19;

  const nameAt = (addr: number) => {
    // name: one byte of flags, a varint length, the bytes.
    const head = mem.bytes(addr, 11);
    let len = 0;
    let shift = 0;
    let i = 1;
    for (; i < head.length; i++) {
      len |= (head[i]! & 0x7f) << shift;
      shift += 7;
      if (!(head[i]! & 0x80)) break;
    }
    return latin1.decode(mem.bytes(addr + i + 1, Math.min(len, 4096)));
  };
  const name = (typ: number) => {
    const n = nameAt(types + mem.i32(typ + TYPE_STR));
    return (mem.bytes(typ + TYPE_TFLAG, 1)[0]! & TFLAG_EXTRA_STAR) !== 0 ? n.slice(1) : n;
  };
  const kind = (t: number) => mem.bytes(t + TYPE_KIND, 1)[0]! & KIND_MASK;
  return {
    name,
    *itabs(): Generator<{ itab: number; inter: number; typ: number }> {
      for (let k = 0; k < nItabs; k++) {
        const itab = mem.pointer(itablinks + 8 * k);
        yield { itab, inter: mem.pointer(itab), typ: mem.pointer(itab + 8) };
      }
    },
    /** The element of pointer type t, which must be named `want`; else why not. */
    /** The package path a pointer-to-struct type's struct names ("" when not one). */
    pkgPathOf(t: number): string {
      if (kind(t) !== KIND_PTR) return "";
      const e = mem.pointer(t + TYPE_SIZE);
      if (kind(e) !== KIND_STRUCT) return "";
      const path = mem.pointer(e + TYPE_SIZE);
      return path ? nameAt(path) : "";
    },
    elem(t: number, want: string): number | string {
      if (kind(t) !== KIND_PTR) return `${want}: not a pointer type`;
      const e = mem.pointer(t + TYPE_SIZE);
      return name(e) === want ? e : `${want}: the pointer's element is ${name(e)}`;
    },
    fields(t: number, owner: string): StructField[] | string {
      if (kind(t) !== KIND_STRUCT) return `${owner} is not a struct`;
      const list = mem.pointer(t + STRUCT_FIELDS);
      const n = mem.u64(t + STRUCT_FIELDS + 8);
      if (n > 4096) return `${owner}: implausible field count ${n}`;
      const out: StructField[] = [];
      for (let i = 0; i < n; i++) {
        const f = list + i * FIELD_SIZE;
        const raw = mem.u64(f + 16);
        out.push({ name: nameAt(mem.pointer(f)), typ: mem.pointer(f + 8), offset: shifted ? Math.floor(raw / 2) : raw });
      }
      return out;
    },
  };
}

type Memory = ReturnType<typeof memoryReader>;

/** The offsets of moduledata's text, types and itablinks, read from a candidate's words:
 * text is followed by etext and noptrdata; types is the first word after text that is where
 * .rodata begins (runtime.types is the start of the read-only data); itablinks is a slice of
 * the .itablink section (length = capacity). Undefined when the candidate is not moduledata. */
function moduledataFields(mem: Memory, md: number, at: { text: number; noptrdata: number; types: number[]; itablink: number; itablinkSize: number }) {
  const WORDS = 96;
  const word = (i: number) => {
    try {
      return mem.pointer(md + 8 * i);
    } catch {
      return undefined;
    }
  };
  let text: number | undefined;
  let types: number | undefined;
  for (let i = 1; i < WORDS; i++) {
    const w = word(i);
    if (w === undefined) return undefined;
    if (text === undefined) {
      if (w === at.text && word(i + 2) === at.noptrdata) text = i;
      continue;
    }
    if (types === undefined && at.types.includes(w)) types = i;
    if (types !== undefined && w === at.itablink) {
      const len = word(i + 1);
      if (len !== undefined && len === word(i + 2) && len * 8 <= at.itablinkSize) return { mdText: 8 * text, mdTypes: 8 * types, mdItablinks: 8 * i };
    }
  }
  return undefined;
}

/** The conn offsets from type descriptors, or why they cannot be read. */
function connFromTypes(types: ReturnType<typeof goTypes>, tcpConn: number | undefined, tlsConn: number | undefined): GoConnLayout | string {
  if (tcpConn === undefined) return "no type information for *net.TCPConn";
  if (tlsConn === undefined) return "no type information for *tls.Conn";
  /** Follows fields from a struct type: the sum of their offsets, and the last one's type. */
  const walk = (start: number | string, steps: [string, string][]): { offset: number; typ: number } | string => {
    if (typeof start === "string") return start;
    let offset = 0;
    let typ = start;
    for (const [name, owner] of steps) {
      const fields = types.fields(typ, owner);
      if (typeof fields === "string") return fields;
      const f = fields.find((x) => x.name === name);
      if (!f) return `${owner} has no field ${name}`;
      offset += f.offset;
      typ = f.typ;
    }
    return { offset, typ };
  };
  // *net.TCPConn → TCPConn.conn → conn.fd (a *netFD) → netFD.pfd → poll.FD.Sysfd.
  const fd = walk(types.elem(tcpConn, "net.TCPConn"), [["conn", "net.TCPConn"], ["fd", "net.conn"]]);
  if (typeof fd === "string") return fd;
  const sysfd = walk(types.elem(fd.typ, "net.netFD"), [["pfd", "net.netFD"], ["Sysfd", "poll.FD"]]);
  if (typeof sysfd === "string") return sysfd;
  const conn = walk(types.elem(tlsConn, "tls.Conn"), [["conn", "tls.Conn"]]);
  if (typeof conn === "string") return conn;
  return { tlsConnConn: conn.offset, tcpConnFd: fd.offset, netFdSysfd: sysfd.offset };
}

/** Reads the binary's memory image by virtual address; pointers as relocated at load. */
function memoryReader(elf: ElfFile) {
  // R_X86_64_RELATIVE relocations (a PIE binary has tens of thousands).
  const relocs = relativeRelocations(elf);
  // Whole segments are read once: the itab walk makes thousands of small reads.
  const loaded = new Map<ElfSegment, Uint8Array>();
  const bytes = (vaddr: number, n: number) => {
    const seg = elf.segments.find((g) => g.type === PT_LOAD && vaddr >= g.vaddr && vaddr + n <= g.vaddr + g.filesz);
    if (!seg) throw new GoLayoutError(`${elf.path}: 0x${vaddr.toString(16)} is not in the file`);
    let data = loaded.get(seg);
    if (!data) loaded.set(seg, (data = elf.read(seg.offset, seg.filesz)));
    return data.subarray(vaddr - seg.vaddr, vaddr - seg.vaddr + n);
  };
  const u64 = (vaddr: number) => {
    const b = bytes(vaddr, 8);
    const dv = new DataView(b.buffer, b.byteOffset, 8);
    return dv.getUint32(0, true) + dv.getUint32(4, true) * 2 ** 32;
  };
  return {
    bytes,
    u64,
    i32: (vaddr: number) => {
      const b = bytes(vaddr, 4);
      return new DataView(b.buffer, b.byteOffset, 4).getInt32(0, true);
    },
    pointer: (vaddr: number) => relocs.get(vaddr) ?? u64(vaddr),
    /** Addresses in writable data that hold `target`. */
    pointersTo(target: number): number[] {
      const found: number[] = [];
      for (const [at, value] of relocs) if (value === target) found.push(at);
      const lo = target % 2 ** 32;
      const hi = Math.floor(target / 2 ** 32);
      for (const name of [".noptrdata", ".data"]) {
        const sec = elf.section(name);
        if (!sec) continue;
        const raw = elf.sectionBytes(sec);
        const words = new Uint32Array(raw.buffer, raw.byteOffset, raw.byteLength >> 2);
        for (let w = 0; w + 1 < words.length; w += 2) if (words[w] === lo && words[w + 1] === hi) found.push(sec.addr + w * 4);
      }
      return found;
    },
  };
}

function relativeRelocations(elf: ElfFile): Map<number, number> {
  const relocated = new Map<number, number>(); // vaddr -> value
  const relative = elf.machine === "arm64" ? R_AARCH64_RELATIVE : R_X86_64_RELATIVE;
  for (const sec of elf.sections) {
    if (sec.type !== 4 /* SHT_RELA */ || sec.entsize !== 24) continue;
    const raw = elf.sectionBytes(sec);
    const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    for (let o = 0; o + 24 <= raw.length; o += 24) {
      if (dv.getUint32(o + 8, true) !== relative) continue;
      relocated.set(dv.getUint32(o, true) + dv.getUint32(o + 4, true) * 2 ** 32, dv.getUint32(o + 16, true) + dv.getInt32(o + 20, true) * 2 ** 32);
    }
  }
  return relocated;
}
