// Finds every OpenSSL in use on the host and puts tapwire's uprobes on its SSL_read,
// SSL_write, SSL_read_ex and SSL_write_ex, once per file (device + inode):
//  - at start: the system's libssl from the loader cache, every libssl.so* mapped by a
//    running process, and every running executable that exports SSL_read (node);
//  - then event-driven: a process that execs (its executable), and a process that opens a
//    file named libssl.so* (the dynamic loader at start-up, Python's lazy `import ssl`,
//    dlopen) — the kernel reports both.
import { existsSync, readdirSync, readFileSync, readlinkSync, statSync } from "node:fs";
import { dirname, basename } from "node:path";
import { openElf, ElfError } from "../elfkit/elf.ts";
import type { UprobeLink, UprobeSpec } from "../bpf/loader.ts";
import * as L from "../bpf/gen/layout.ts";

export interface TlsLibrary {
  /** Small id, carried in the uprobes' cookies and on connections (never 0). */
  id: number;
  path: string;
  /** "OpenSSL 3.0.19", or "OpenSSL" when the version cannot be read. */
  version: string;
  /** The functions probed. */
  functions: string[];
}

export interface OpensslProbes {
  /** Look at what runs now. */
  scanRunning(): void;
  /** A process exec'd: its executable may carry OpenSSL. */
  onExec(pid: number): void;
  /** A process opened a file named libssl.so*. */
  onLibOpen(pid: number, path: string, fd: number): void;
  /** The library behind an id from a connection. */
  library(id: number): TlsLibrary | undefined;
  readonly libraries: TlsLibrary[];
  close(): void;
}

const FUNCTIONS: [string, number][] = [
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
const WANTED = new Set(FUNCTIONS.map(([name]) => name));

/** The OpenSSL functions a file exports, with their file offsets; none when it is not an OpenSSL. */
export function opensslFunctions(path: string): { name: string; offset: number }[] {
  let elf;
  try {
    elf = openElf(path);
  } catch (e) {
    if (e instanceof ElfError) return [];
    throw e;
  }
  try {
    const syms = elf.symbols(WANTED);
    const has = (n: string) => !!syms.get(n)?.defined && syms.get(n)!.isFunction && Number.isFinite(syms.get(n)!.fileOffset);
    // SSL_read and SSL_write are the must; the _ex pair came with OpenSSL 1.1.1.
    if (!has("SSL_read") || !has("SSL_write")) return [];
    return FUNCTIONS.map(([n]) => n)
      .filter(has)
      .map((name) => ({ name, offset: syms.get(name)!.fileOffset }));
  } finally {
    elf.close();
  }
}

const VERSION = /OpenSSL (\d+\.\d+\.\d+[a-z]*)/;

/** "OpenSSL x.y.z" from the file, or from the libcrypto beside a libssl. */
export function opensslVersion(path: string): string {
  const candidates = [path];
  const m = /libssl(\.so.*)$/.exec(basename(path));
  if (m) candidates.push(`${dirname(path)}/libcrypto${m[1]}`);
  for (const file of candidates) {
    let elf;
    try {
      elf = openElf(file);
    } catch {
      continue; // not there, or not ELF: try the next
    }
    try {
      // The version string sits in read-only data: only that section is read.
      const rodata = elf.sections.find((s) => s.name === ".rodata");
      if (!rodata) continue;
      const v = VERSION.exec(Buffer.from(elf.read(rodata.offset, rodata.size)).toString("latin1"));
      if (v) return `OpenSSL ${v[1]}`;
    } finally {
      elf.close();
    }
  }
  return "OpenSSL";
}

/** Paths of the system's libssl from the dynamic loader's cache (`ldconfig -p`). */
function systemLibssl(): string[] {
  for (const ldconfig of ["/sbin/ldconfig", "/usr/sbin/ldconfig"]) {
    if (!existsSync(ldconfig)) continue;
    const r = Bun.spawnSync([ldconfig, "-p"], { stdout: "pipe", stderr: "ignore" });
    const out = new TextDecoder().decode(r.stdout);
    return [...out.matchAll(/^\s*libssl\.so\S*\s.*=>\s*(\S+)$/gm)].map((m) => m[1]!);
  }
  return [];
}

export function createOpensslProbes(opts: {
  /** Absent: find the files only (tapwire doctor). */
  attach?(u: UprobeSpec): UprobeLink;
  /** Diagnostics (stderr). */
  log(line: string): void;
}): OpensslProbes {
  const byFile = new Map<string, TlsLibrary | null>(); // "dev:ino" -> library, or null: not OpenSSL
  const libraries: TlsLibrary[] = [];
  const links: UprobeLink[] = [];

  /** `path` as tapwire can open it; `shown` as the user knows it. */
  function consider(path: string, shown = path): void {
    let st;
    try {
      st = statSync(path);
    } catch {
      return; // gone already (the process exited)
    }
    if (!st.isFile()) return;
    const key = `${st.dev}:${st.ino}`;
    if (byFile.has(key)) return;
    const functions = opensslFunctions(path);
    if (!functions.length) {
      byFile.set(key, null);
      return;
    }
    const lib: TlsLibrary = { id: libraries.length + 1, path: shown, version: opensslVersion(path), functions: functions.map((f) => f.name) };
    byFile.set(key, lib);
    try {
      if (opts.attach) {
        const targets = functions.map((f) => ({ offset: f.offset, cookie: lib.id | (FUNCTIONS.find(([n]) => n === f.name)![1] << 16) }));
        links.push(opts.attach({ program: "tw_ssl_enter", path, targets, retprobe: false }));
        // SSL_free needs no return probe.
        const returning = targets.filter((t) => t.cookie >> 16 !== L.TW_SSL_FREE);
        links.push(opts.attach({ program: "tw_ssl_exit", path, targets: returning, retprobe: true }));
      }
      libraries.push(lib);
      if (opts.attach) opts.log(`tls: probing ${lib.version} in ${shown} (${lib.functions.join(", ")})`);
    } catch (e) {
      opts.log(`tls: cannot probe ${shown}: ${(e as Error).message}`);
    }
  }

  /** A path from inside a process, opened through its root (it may live in a container). */
  function inProcess(pid: number, path: string): string {
    return path.startsWith("/") ? `/proc/${pid}/root${path}` : `/proc/${pid}/cwd/${path}`;
  }

  function considerExe(pid: number): void {
    let exe;
    try {
      exe = readlinkSync(`/proc/${pid}/exe`);
    } catch {
      return;
    }
    consider(inProcess(pid, exe.replace(/ \(deleted\)$/, "")), exe);
  }

  return {
    libraries,
    library: (id) => libraries[id - 1],
    scanRunning() {
      for (const path of systemLibssl()) consider(path);
      for (const entry of readdirSync("/proc")) {
        if (!/^\d+$/.test(entry)) continue;
        const pid = Number(entry);
        if (pid === process.pid) continue;
        considerExe(pid);
        let maps;
        try {
          maps = readFileSync(`/proc/${pid}/maps`, "latin1");
        } catch {
          continue;
        }
        for (const m of maps.matchAll(/ (\/\S*\/libssl\.so[^\s/]*)$/gm)) consider(inProcess(pid, m[1]!), m[1]!);
      }
    },
    onExec: (pid) => considerExe(pid),
    onLibOpen(pid, path, fd) {
      const before = libraries.length;
      consider(inProcess(pid, path), path);
      // The process may already have left; its open file may still be reachable.
      if (libraries.length === before && fd >= 0 && !existsSync(inProcess(pid, path))) consider(`/proc/${pid}/fd/${fd}`, path);
    },
    close() {
      for (const l of links.splice(0)) l.detach();
    },
  };
}
