// The dynamic loader's cache (/etc/ld.so.cache, written by ldconfig): which file a library
// name like "libssl.so.3" resolves to without LD_LIBRARY_PATH or RUNPATH. Read directly, so
// finding a program's libraries needs no ldconfig run (and works inside a container's root).
//
// glibc's format since 2.32 ("glibc-ld.so.cache1.1"): a 48-byte header (magic and version,
// 20 bytes; nlibs u32; string bytes u32; flags, padding, extension offset, unused), then
// nlibs entries of 24 bytes {flags i32, key u32, value u32, osversion u32, hwcap u64} whose
// key (the name) and value (the path) are offsets from that header. Older files
// start with the "ld.so-1.7.0" table and carry the new one after it, 8-byte aligned.

export type LdCacheMachine = "x86-64" | "arm64";

const NEW_MAGIC = "glibc-ld.so.cache1.1";
const OLD_MAGIC = "ld.so-1.7.0";
const FLAG_TYPE_MASK = 0x00ff;
const FLAG_ELF_LIBC6 = 0x0003;
const FLAG_REQUIRED_MASK = 0xff00;
const REQUIRED: Record<LdCacheMachine, number> = { "x86-64": 0x0300, arm64: 0x0a00 };

/** Library name -> path, the first entry of each name for `machine` (the loader's choice). */
export function parseLdCache(bytes: Uint8Array, machine: LdCacheMachine = "x86-64"): Map<string, string> {
  const out = new Map<string, string>();
  const latin1 = new TextDecoder("latin1");
  let base = 0;
  if (latin1.decode(bytes.subarray(0, OLD_MAGIC.length)) === OLD_MAGIC) {
    if (bytes.length < 16) return out;
    const oldCount = new DataView(bytes.buffer, bytes.byteOffset).getUint32(12, true);
    base = (16 + oldCount * 12 + 7) & ~7;
  }
  if (bytes.length < base + 48 || latin1.decode(bytes.subarray(base, base + NEW_MAGIC.length)) !== NEW_MAGIC) return out;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const nlibs = dv.getUint32(base + 20, true);
  const cString = (at: number) => {
    if (at >= bytes.length) return undefined;
    const end = bytes.indexOf(0, at);
    return latin1.decode(bytes.subarray(at, end < 0 ? bytes.length : end));
  };
  for (let i = 0; i < nlibs; i++) {
    const e = base + 48 + i * 24;
    if (e + 24 > bytes.length) break;
    const flags = dv.getInt32(e, true);
    if ((flags & FLAG_TYPE_MASK) !== FLAG_ELF_LIBC6 || (flags & FLAG_REQUIRED_MASK) !== REQUIRED[machine]) continue;
    // Offsets count from the new header (the start of the file when it is the only one).
    const name = cString(base + dv.getUint32(e + 4, true));
    const path = cString(base + dv.getUint32(e + 8, true));
    if (name && path && !out.has(name)) out.set(name, path);
  }
  return out;
}
