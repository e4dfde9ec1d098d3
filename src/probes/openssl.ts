// OpenSSL in a file: the functions tapwire probes (exported, with their file offsets) and
// the version string.
import { dirname, basename } from "node:path";
import { openElf, ElfError } from "../elfkit/elf.ts";
import { exportedFunctions, versionInFile, type ExportedFunction } from "./exported-functions.ts";
import * as L from "../bpf/gen/layout.ts";
import { planOpenssl, type OpensslProbe } from "./uprobe-placement.ts";

/** Each probed function and its code (enum tw_ssl_fn) in the uprobe cookie. */
export const OPENSSL_FUNCTIONS: [string, number][] = [
  ["SSL_read", L.TW_SSL_READ],
  ["SSL_write", L.TW_SSL_WRITE],
  ["SSL_read_ex", L.TW_SSL_READ_EX],
  ["SSL_write_ex", L.TW_SSL_WRITE_EX],
  // No data: their socket I/O tells which socket an SSL object uses before its first read.
  ["SSL_do_handshake", L.TW_SSL_HANDSHAKE],
  ["SSL_connect", L.TW_SSL_HANDSHAKE],
  ["SSL_accept", L.TW_SSL_HANDSHAKE],
  ["SSL_free", L.TW_SSL_FREE],
  ["SSL_new", L.TW_SSL_NEW],
];
const WANTED = new Set(OPENSSL_FUNCTIONS.map(([name]) => name));

export type OpensslExport = ExportedFunction;

/** The OpenSSL functions a file exports, with their places; none when it is not an OpenSSL. */
export function opensslFunctions(path: string): OpensslExport[] {
  // SSL_read and SSL_write are the must; the _ex pair came with OpenSSL 1.1.1.
  return exportedFunctions(path, WANTED, (has) => (has("SSL_read") && has("SSL_write") ? OPENSSL_FUNCTIONS.filter(([n]) => has(n)) : undefined));
}

/** Where uprobes go: "chosen" reads the code for the cheapest equivalent place
 * (src/probes/uprobe-placement.ts), "entry" puts every probe at its function's entry. */
export type PlacementMode = "chosen" | "entry";

/** The probes for the OpenSSL functions of `path` (from opensslFunctions), placed; x86-64
 * code is read for cheaper places (needs decode.loadDecoder()), other code keeps entries. */
export function opensslProbes(path: string, functions: OpensslExport[], mode: PlacementMode): (OpensslProbe & { offset: number })[] {
  const elf = openElf(path);
  try {
    const codes = { read: L.TW_SSL_READ, write: L.TW_SSL_WRITE, readEx: L.TW_SSL_READ_EX, writeEx: L.TW_SSL_WRITE_EX, free: L.TW_SSL_FREE };
    return planOpenssl(elf, functions, codes, mode === "chosen" && elf.machine === "x86-64").map((p) => {
      const offset = elf.fileOffset(p.place.vaddr);
      if (offset === undefined) throw new ElfError(`${path}: 0x${p.place.vaddr.toString(16)} is not in the file`);
      return { ...p, offset };
    });
  } finally {
    elf.close();
  }
}

const VERSION = /^OpenSSL (\d+\.\d+\.\d+[a-z]*)/;
const MARK = Buffer.from("OpenSSL ");

/** "OpenSSL x.y.z" from the file, or from the libcrypto beside a libssl, or from `libcrypto`
 * (the one it is loaded with, when known); `named` is a path the file can also be opened by,
 * whose directory is looked in for libcrypto (when `file` is a descriptor's /proc/self/fd/N). */
export function opensslVersion(file: string, named = file, libcrypto?: string): string {
  const candidates = [file];
  const m = /libssl(\.so.*)$/.exec(basename(named));
  if (m) candidates.push(`${dirname(named)}/libcrypto${m[1]}`);
  if (libcrypto) candidates.push(libcrypto);
  for (const candidate of candidates) {
    const v = versionInFile(candidate, MARK, VERSION);
    if (v) return `OpenSSL ${v}`;
  }
  return "OpenSSL";
}
