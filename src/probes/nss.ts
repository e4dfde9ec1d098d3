// NSS (libssl3.so, with NSPR's libnspr4.so): Firefox's and Thunderbird's TLS, tstclnt and
// selfserv. An NSS SSL socket is an NSPR file descriptor whose top layer is NSS's SSL layer;
// programs move plaintext through NSPR's generic calls (PR_Write, PR_Send, PR_Writev,
// PR_Read, PR_Recv)
// on it, and the SSL layer reaches the TCP socket below through its methods table, not
// through those calls again. So the NSPR calls are probed — with OpenSSL's programs: their
// shape is (fd, buffer, length) in, bytes moved out — and the kernel side counts a call only
// when its descriptor's methods table is the SSL layer's, learnt in each process from what
// SSL_ImportFD returns (every NSS SSL socket shares that table). Any other NSPR file or
// socket (a plain one, a file) is left alone. A file is NSS by its symbols (SSL_ImportFD and
// no SSL_read), never by its name: OpenSSL 1.0's libssl was also once called libssl3.
import { dirname } from "node:path";
import { existsSync } from "node:fs";
import { openElf, ElfError } from "../elfkit/elf.ts";
import { exportedFunctions, versionInFile } from "./exported-functions.ts";
import * as L from "../bpf/gen/layout.ts";
import { entryPlacement, type Placement } from "./uprobe-placement.ts";

export interface NssProbe {
  name: string;
  /** enum tw_ssl_fn. */
  fn: number;
  /** The file it goes in (libssl3.so or libnspr4.so). */
  file: string;
  offset: number;
  place: Placement;
  returns: boolean;
  /** TW_COOKIE_NSS: counted only on an SSL socket. */
  flags: number;
}

const SSL_FUNCTIONS: [string, number][] = [
  ["SSL_ImportFD", L.TW_NSS_IMPORT],
  // Only names the socket before any data (like OpenSSL's SSL_do_handshake).
  ["SSL_ForceHandshake", L.TW_SSL_HANDSHAKE],
];
const NSPR_FUNCTIONS: [string, number][] = [
  ["PR_Write", L.TW_SSL_WRITE],
  ["PR_Send", L.TW_SSL_WRITE],
  ["PR_Writev", L.TW_NSS_WRITEV],
  ["PR_Read", L.TW_SSL_READ],
  ["PR_Recv", L.TW_NSS_RECV],
  ["PR_Close", L.TW_SSL_FREE],
];

/** Whether a file is NSS's libssl3 (it exports SSL_ImportFD, and no SSL_read). */
export function isNssLibssl(path: string): boolean {
  return exportedFunctions(path, ["SSL_ImportFD", "SSL_read"], (has) => (has("SSL_ImportFD") && !has("SSL_read") ? [["SSL_ImportFD", L.TW_NSS_IMPORT]] : undefined)).length > 0;
}

/** The libnspr4.so loaded with a libssl3 at `named`: beside it, as distributions install them. */
export function nsprBeside(named: string): string | undefined {
  const path = `${dirname(named)}/libnspr4.so`;
  return existsSync(path) ? path : undefined;
}

/** Every probe of NSS: SSL_ImportFD and SSL_ForceHandshake in libssl3, the NSPR calls in
 * libnspr4 (all at their entries: each has a uretprobe but PR_Close, and PR_*'s entries
 * are one load and an indirect jump — nothing cheaper to move to). */
export function nssProbes(libssl3: string, nspr: string): NssProbe[] {
  const out: NssProbe[] = [];
  for (const [file, names, flags] of [
    [libssl3, SSL_FUNCTIONS, 0],
    [nspr, NSPR_FUNCTIONS, L.TW_COOKIE_NSS],
  ] as const) {
    const found = exportedFunctions(file, names.map(([n]) => n), (has) => names.filter(([n]) => has(n)) as [string, number][]);
    if (found.length !== names.length) {
      const missing = names.filter(([n]) => !found.some((f) => f.name === n)).map(([n]) => n);
      throw new ElfError(`${file}: does not export ${missing.join(", ")}`);
    }
    const elf = openElf(file);
    try {
      for (const f of found) {
        const returns = f.fn !== L.TW_SSL_FREE;
        out.push({ name: f.name, fn: f.fn, file, offset: f.offset, place: entryPlacement(elf, f.vaddr, returns ? "entry kept: its uretprobe needs the entry" : "entry kept"), returns, flags });
      }
    } finally {
      elf.close();
    }
  }
  return out;
}

const MARK = Buffer.from("Version: NSS ");
const VERSION = /^Version: NSS (\d+\.\d+(?:\.\d+)*)/;

/** "NSS x.y.z" from libssl3's version line, or "NSS". */
export function nssVersion(file: string): string {
  const v = versionInFile(file, MARK, VERSION);
  return v ? `NSS ${v}` : "NSS";
}
