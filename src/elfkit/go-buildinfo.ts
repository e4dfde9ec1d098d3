// The Go version and main module of a Go executable, from its .go.buildinfo section (present
// in stripped binaries too). Layout (Go 1.18+, "inline strings"): a 32-byte header — the
// magic "\xff Go buildinf:", pointer size, flags (bit 1: strings inline) — then two
// varint-length-prefixed strings: the runtime version, and the module info text with 16
// sentinel bytes on each side. Older layouts point at the strings instead; they are read too.
import type { ElfFile } from "./elf.ts";

export interface GoBuildInfo {
  /** "go1.19.8" */
  version: string;
  /** [major, minor] of the version: 1.19 -> [1, 19]. */
  release: [number, number];
  /** The main package's import path ("path" line), when recorded. */
  path: string;
  /** The main module ("mod" line), when recorded. */
  mainModule: string;
  mainModuleVersion: string;
  /** "build" settings, in order. */
  settings: [string, string][];
}

const MAGIC = "\xff Go buildinf:";

export class GoBuildInfoError extends Error {}

/** undefined when the file has no Go build info (not a Go executable). */
export function readGoBuildInfo(elf: ElfFile): GoBuildInfo | undefined {
  const sec = elf.section(".go.buildinfo");
  if (!sec) return undefined;
  const data = elf.sectionBytes(sec);
  if (data.length < 32 || latin1(data.subarray(0, 14)) !== MAGIC) throw new GoBuildInfoError(`${elf.path}: .go.buildinfo has no Go build info header`);
  const ptrSize = data[14]!;
  const flags = data[15]!;
  if (ptrSize !== 8 && ptrSize !== 4) throw new GoBuildInfoError(`${elf.path}: .go.buildinfo pointer size ${ptrSize}`);
  if (flags & 1) throw new GoBuildInfoError(`${elf.path}: big-endian Go binaries are not supported`);

  let version: string;
  let modinfo: string;
  if (flags & 2) {
    let at = 32;
    [version, at] = varintString(data, at, elf.path);
    [modinfo] = varintString(data, at, elf.path);
  } else {
    // Go < 1.18: two pointers to Go string headers {data pointer, length}.
    const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const ptr = (off: number) => (ptrSize === 8 ? Number(dv.getBigUint64(off, true)) : dv.getUint32(off, true));
    const readString = (headerVaddr: number) => {
      const h = vaddrBytes(elf, headerVaddr, 2 * ptrSize);
      const hv = new DataView(h.buffer, h.byteOffset, h.byteLength);
      const p = ptrSize === 8 ? Number(hv.getBigUint64(0, true)) : hv.getUint32(0, true);
      const n = ptrSize === 8 ? Number(hv.getBigUint64(8, true)) : hv.getUint32(4, true);
      return utf8(vaddrBytes(elf, p, n));
    };
    version = readString(ptr(16));
    modinfo = readString(ptr(16 + ptrSize));
  }
  // Module info is framed by 16 sentinel bytes on each side.
  if (modinfo.length >= 33 && modinfo[modinfo.length - 17] === "\n") modinfo = modinfo.slice(16, -16);

  const info: GoBuildInfo = { version, release: releaseOf(version), path: "", mainModule: "", mainModuleVersion: "", settings: [] };
  for (const line of modinfo.split("\n")) {
    const f = line.split("\t");
    if (f[0] === "path") info.path = f[1] ?? "";
    else if (f[0] === "mod") {
      info.mainModule = f[1] ?? "";
      info.mainModuleVersion = f[2] ?? "";
    } else if (f[0] === "build" && f[1]) {
      const eq = f[1].indexOf("=");
      info.settings.push(eq < 0 ? [f[1], ""] : [f[1].slice(0, eq), f[1].slice(eq + 1)]);
    }
  }
  return info;
}

/** go1.19.8 -> [1, 19]; devel or unknown -> [0, 0]. */
export function releaseOf(version: string): [number, number] {
  const m = /^go(\d+)\.(\d+)/.exec(version);
  return m ? [Number(m[1]), Number(m[2])] : [0, 0];
}

function varintString(data: Uint8Array, at: number, path: string): [string, number] {
  let n = 0;
  let shift = 0;
  for (;;) {
    if (at >= data.length || shift > 35) throw new GoBuildInfoError(`${path}: .go.buildinfo is truncated`);
    const b = data[at++]!;
    n += (b & 0x7f) * 2 ** shift;
    shift += 7;
    if (!(b & 0x80)) break;
  }
  if (at + n > data.length) throw new GoBuildInfoError(`${path}: .go.buildinfo is truncated`);
  return [utf8(data.subarray(at, at + n)), at + n];
}

function vaddrBytes(elf: ElfFile, vaddr: number, length: number): Uint8Array {
  const off = elf.fileOffset(vaddr);
  if (off === undefined) throw new GoBuildInfoError(`${elf.path}: build info points outside the file`);
  return elf.read(off, length);
}

const latin1 = (b: Uint8Array) => new TextDecoder("latin1").decode(b);
const utf8 = (b: Uint8Array) => new TextDecoder().decode(b);
