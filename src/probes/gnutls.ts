// GnuTLS in a file (libgnutls.so.30: wget, libcurl-gnutls, git, apt's https): the functions
// tapwire probes and the version. Its record calls have OpenSSL's SSL_read/SSL_write shape —
// (session, buffer, length) in, the bytes moved (or a negative error) out — so the same
// kernel programs read them, with the session pointer in the place of the SSL object: the
// socket is named by the first TCP syscall inside a call (or the handshake's), as for OpenSSL.
import { openElf, ElfError } from "../elfkit/elf.ts";
import { exportedFunctions, versionInFile, type ExportedFunction } from "./exported-functions.ts";
import * as L from "../bpf/gen/layout.ts";
import type { PlacementMode } from "./openssl.ts";
import { entryPlacement, placeEntryProbe, type Placement } from "./uprobe-placement.ts";

/**
 * gnutls_record_send is a tail call into gnutls_record_send2 (3.6.3+): the latter is probed
 * when there, so that both calls are seen and neither twice. The handshake only names the
 * socket; deinit frees the session (its address may come back for the next one).
 */
const SEND_NAMES = ["gnutls_record_send2", "gnutls_record_send"];
const OTHERS: [string, number][] = [
  ["gnutls_record_recv", L.TW_SSL_READ],
  ["gnutls_handshake", L.TW_SSL_HANDSHAKE],
  ["gnutls_deinit", L.TW_SSL_FREE],
];
const WANTED = new Set([...SEND_NAMES, ...OTHERS.map(([n]) => n)]);

/** The GnuTLS functions a file exports, with their places; none when it is not GnuTLS. */
export function gnutlsFunctions(path: string): ExportedFunction[] {
  return exportedFunctions(path, WANTED, (has) => {
    const send = SEND_NAMES.find(has);
    return send && has("gnutls_record_recv") ? [[send, L.TW_SSL_WRITE], ...OTHERS.filter(([n]) => has(n))] : undefined;
  });
}

export interface GnutlsProbe {
  name: string;
  fn: number;
  /** File offset of the place. */
  offset: number;
  place: Placement;
  /** A uretprobe goes with it (every call but gnutls_deinit returns what is read). */
  returns: boolean;
}

/** Where each goes: a call with a return probe at its entry (only there is the return
 * address on top of the stack); gnutls_deinit at its first emulated instruction when "chosen"
 * (the session pointer, rdi, untouched before it). */
export function gnutlsProbes(path: string, functions: ExportedFunction[], mode: PlacementMode): GnutlsProbe[] {
  const elf = openElf(path);
  try {
    return functions.map((f) => {
      const returns = f.fn !== L.TW_SSL_FREE;
      const place = returns || mode === "entry" || elf.machine !== "x86-64" ? entryPlacement(elf, f.vaddr, returns ? "entry kept: its uretprobe needs the entry" : "entry: --uprobe-placement entry") : placeEntryProbe(elf, f.vaddr, f.size, ["rdi"]);
      const offset = elf.fileOffset(place.vaddr);
      if (offset === undefined) throw new ElfError(`${path}: 0x${place.vaddr.toString(16)} is not in the file`);
      return { name: f.name, fn: f.fn, offset, place, returns };
    });
  } finally {
    elf.close();
  }
}

const MARK = Buffer.from("Enabled GnuTLS ");
const VERSION = /^Enabled GnuTLS (\d+\.\d+\.\d+)/;

/** "GnuTLS x.y.z" (from the debug line every build carries), or "GnuTLS". */
export function gnutlsVersion(file: string): string {
  const v = versionInFile(file, MARK, VERSION);
  return v ? `GnuTLS ${v}` : "GnuTLS";
}
