// What the Go probes need to know of a binary's runtime data: the itab of
// (net.Conn, *net.TCPConn) — the one value of tls.Conn's net.Conn field whose data is a
// *net.TCPConn — and the struct offsets from tls.Conn to the socket's fd.
//
// The itab is found the way the runtime finds it: moduledata (located by its first field,
// the pointer to the pclntab header), its itablinks, and each itab's type names through
// moduledata.types. In PIE binaries these pointers are filled in by R_X86_64_RELATIVE
// relocations at load, so pointers are read through the relocation table.
//
// Offsets come from a table by Go version when the version is in it (each entry checked by a
// test against a binary of that version and its DWARF; tapwire's tests build with the
// machine's Go, 1.19), else from the binary's DWARF (any Go version). The table comes first
// because it is instant, while reading DWARF takes 15-40 ms — too long for an exec that waits
// for its probes. Stripped binaries of versions not in the table are not probed.
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

const GO_1_19: RuntimeOffsets = {
  mdText: 176,
  mdTypes: 280,
  mdItablinks: 360,
  typeTflag: 20,
  typeStr: 40,
  // tls.Conn{conn net.Conn, ...}; net.TCPConn{conn{fd *netFD}}; netFD{pfd poll.FD{fdmu fdMutex (16 bytes), Sysfd int}}
  conn: { tlsConnConn: 0, tcpConnFd: 0, netFdSysfd: 16 },
};

/** Go releases whose layout is known (and tested). */
export const BY_RELEASE: Record<string, RuntimeOffsets> = { "1.19": GO_1_19 };

const R_X86_64_RELATIVE = 8;
const PT_LOAD = 1;
const latin1 = new TextDecoder("latin1");
const TFLAG_EXTRA_STAR = 2;

export class GoLayoutError extends Error {}

export interface GoRuntimeLayout {
  /** Link-time address of the (net.Conn, *net.TCPConn) itab; undefined if the binary has none. */
  tcpConnItab: number | undefined;
  conn: GoConnLayout;
  /** Where the struct offsets came from: "DWARF", or "table (Go 1.19)". */
  source: string;
}

/** The table's offsets for the version, else the binary's DWARF; with `preferDwarf` (tapwire
 * inspect) DWARF first. */
export function runtimeOffsets(elf: ElfFile, release: [number, number], opts: { preferDwarf?: boolean } = {}): { offsets: RuntimeOffsets; source: string } {
  const version = `${release[0]}.${release[1]}`;
  const table = BY_RELEASE[version];
  if (table && !opts.preferDwarf) return { offsets: table, source: `table (Go ${version})` };
  const fromDwarf = dwarfOffsets(elf);
  if (fromDwarf) return { offsets: fromDwarf, source: "DWARF" };
  const offsets = table;
  if (!offsets) {
    throw new GoLayoutError(`Go ${version} without DWARF: struct offsets are known only for Go ${Object.keys(BY_RELEASE).join(", ")} (build without -ldflags=-w to probe it)`);
  }
  return { offsets, source: `table (Go ${version})` };
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

export function goRuntimeLayout(elf: ElfFile, release: [number, number], pclntabVaddr: number, opts: { preferDwarf?: boolean } = {}): GoRuntimeLayout {
  const { offsets, source } = runtimeOffsets(elf, release, opts);
  const mem = memoryReader(elf);
  const text = elf.section(".text");
  if (!text) throw new GoLayoutError(`${elf.path}: no .text section`);

  // moduledata: a pointer to the pclntab header, with .text's address at mdText.
  const md = mem.pointersTo(pclntabVaddr).find((at) => mem.pointer(at + offsets.mdText) === text.addr);
  if (md === undefined) throw new GoLayoutError(`${elf.path}: runtime moduledata not found`);
  const types = mem.pointer(md + offsets.mdTypes);
  const itablinks = mem.pointer(md + offsets.mdItablinks);
  const nItabs = mem.u64(md + offsets.mdItablinks + 8);
  if (nItabs > 1 << 20) throw new GoLayoutError(`${elf.path}: implausible itab count ${nItabs}`);

  const typeName = (typ: number) => {
    const off = mem.i32(typ + offsets.typeStr);
    const extraStar = (mem.bytes(typ + offsets.typeTflag, 1)[0]! & TFLAG_EXTRA_STAR) !== 0;
    // name: one byte of flags, a varint length, the bytes.
    const head = mem.bytes(types + off, 11);
    let len = 0;
    let shift = 0;
    let i = 1;
    for (; i < head.length; i++) {
      len |= (head[i]! & 0x7f) << shift;
      shift += 7;
      if (!(head[i]! & 0x80)) break;
    }
    const name = latin1.decode(mem.bytes(types + off + i + 1, Math.min(len, 4096)));
    return extraStar ? name.slice(1) : name;
  };

  let tcpConnItab: number | undefined;
  for (let k = 0; k < nItabs; k++) {
    const itab = mem.pointer(itablinks + 8 * k);
    if (typeName(mem.pointer(itab + 8)) === "*net.TCPConn" && typeName(mem.pointer(itab)) === "net.Conn") {
      tcpConnItab = itab;
      break;
    }
  }
  return { tcpConnItab, conn: offsets.conn, source };
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
  for (const sec of elf.sections) {
    if (sec.type !== 4 /* SHT_RELA */ || sec.entsize !== 24) continue;
    const raw = elf.sectionBytes(sec);
    const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    for (let o = 0; o + 24 <= raw.length; o += 24) {
      if (dv.getUint32(o + 8, true) !== R_X86_64_RELATIVE) continue;
      relocated.set(dv.getUint32(o, true) + dv.getUint32(o + 4, true) * 2 ** 32, dv.getUint32(o + 16, true) + dv.getInt32(o + 20, true) * 2 ** 32);
    }
  }
  return relocated;
}
