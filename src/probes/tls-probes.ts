// Finds every TLS library in use on the host and puts tapwire's uprobes on it, once per
// file (device + inode): each OpenSSL (SSL_read, SSL_write, their _ex forms and the calls
// that tell which socket an SSL object uses) and each Go executable that uses crypto/tls
// ((*Conn).Write and (*Conn).Read at entry and at every RET).
//  - at start: the system's libssl from the loader cache, every libssl.so* mapped by a
//    running process, and every running executable (node carries OpenSSL; Go programs);
//  - then event-driven: a process that execs (its executable), and a process that opens a
//    file named libssl.so* (the dynamic loader at start-up, Python's lazy `import ssl`,
//    dlopen) — the kernel reports both.
import { existsSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { openElf, ElfError } from "../elfkit/elf.ts";
import type { GoBinaryConfig, UprobeLink, UprobeSpec } from "../bpf/loader.ts";
import { goTlsTargets } from "./go-tls-targets.ts";
import { goRuntimeLayout } from "./go-runtime-layout.ts";
import { fileIdentity } from "./file-identity.ts";
import { OPENSSL_FUNCTIONS, opensslFunctions, opensslVersion } from "./openssl.ts";
import * as L from "../bpf/gen/layout.ts";

export interface TlsLibrary {
  /** Small id, carried in the uprobes' cookies and on connections (never 0). */
  id: number;
  path: string;
  /** "OpenSSL 3.0.19" ("OpenSSL" when the version cannot be read), or "Go go1.19.8 crypto/tls". */
  version: string;
  /** The functions probed. */
  functions: string[];
  /** The file's identity (src/probes/file-identity.ts): the same file under another path
   * (a symlink, /usr merge, a container's root, another container of the same image) is the
   * same library. */
  fileKey: string;
  /** Whose root the path is in, when not the host's ("container web"). */
  where?: string;
}

/** A file as the user knows it. */
interface FileName {
  path: string;
  where?: string;
}

export interface TlsProbes {
  /** Look at what runs now. */
  scanRunning(): void;
  /** A process exec'd: its executable may carry OpenSSL, or be Go. */
  onExec(pid: number): void;
  /** A process opened a file named libssl.so*. */
  onLibOpen(pid: number, path: string, fd: number): void;
  /** The library behind an id from a connection. */
  library(id: number): TlsLibrary | undefined;
  readonly libraries: TlsLibrary[];
  close(): void;
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

export function createTlsProbes(opts: {
  /** Absent: find the files only (tapwire doctor). */
  attach?(u: UprobeSpec): UprobeLink;
  /** Tell the kernel side about a Go binary (before its probes are attached). */
  setGoBinary?(id: number, config: GoBinaryConfig): void;
  /** Whether Go binaries can be probed here (multi-uprobe links, for bpf_get_func_ip). */
  goSupported?: boolean;
  /** Diagnostics (stderr). */
  log(line: string): void;
  /** Where a process's files are when it is not the host's root ("container web"). */
  rootOf?(pid: number): string | undefined;
}): TlsProbes {
  const byFile = new Map<string, TlsLibrary | null>(); // "dev:ino" -> library, or null: nothing to probe
  const libraries: TlsLibrary[] = [];
  const links: UprobeLink[] = [];

  /** `path` as tapwire can open it; `as` as the user knows it (the path in its process, and
   * whose root that is when it is a container's). */
  function consider(path: string, as: FileName = { path }, key = fileIdentity(path)): void {
    // Not a file, or gone already (the process exited); or known.
    if (key === undefined || byFile.has(key)) return;
    const shown = as.where ? `${as.path} (${as.where})` : as.path;
    byFile.set(key, null);
    try {
      if (!probeOpenssl(path, as, shown, key)) probeGo(path, as, shown, key);
    } catch (e) {
      opts.log(`tls: cannot probe ${shown}: ${(e as Error).message}`);
    }
  }

  function probeOpenssl(path: string, as: FileName, shown: string, key: string): boolean {
    const functions = opensslFunctions(path);
    if (!functions.length) return false;
    const lib: TlsLibrary = { id: libraries.length + 1, path: as.path, where: as.where, version: opensslVersion(path), functions: functions.map((f) => f.name), fileKey: key };
    if (opts.attach) {
      const targets = functions.map((f) => ({ offset: f.offset, cookie: lib.id | (OPENSSL_FUNCTIONS.find(([n]) => n === f.name)![1] << 16) }));
      links.push(opts.attach({ program: "tw_ssl_enter", path, targets, retprobe: false }));
      // SSL_free needs no return probe.
      const returning = targets.filter((t) => t.cookie >> 16 !== L.TW_SSL_FREE);
      links.push(opts.attach({ program: "tw_ssl_exit", path, targets: returning, retprobe: true }));
      opts.log(`tls: probing ${lib.version} in ${shown} (${lib.functions.join(", ")})`);
    }
    byFile.set(key, lib);
    libraries.push(lib);
    return true;
  }

  function probeGo(path: string, as: FileName, shown: string, key: string): boolean {
    const started = performance.now();
    let elf;
    try {
      elf = openElf(path);
    } catch (e) {
      if (e instanceof ElfError) return false; // not ELF: nothing to probe
      throw e;
    }
    try {
      const go = goTlsTargets(elf);
      if (!go) return false;
      if (go.unsupported || !go.read || !go.write) {
        if (go.unsupported && go.unsupported !== "it does not use crypto/tls") opts.log(`tls: not probing ${shown}: ${go.unsupported}`);
        return false;
      }
      const lib: TlsLibrary = {
        id: libraries.length + 1,
        path: as.path,
        where: as.where,
        version: `Go ${go.buildInfo.version} crypto/tls`,
        functions: [go.write.name, go.read.name],
        fileKey: key,
      };
      if (opts.attach) {
        if (!opts.goSupported) {
          opts.log(`tls: not probing ${shown}: Go needs multi-uprobe links (Linux 6.6+)`);
          return false;
        }
        const pclntab = (elf.section(".gopclntab") ?? elf.section(".data.rel.ro.gopclntab"))!;
        const layout = goRuntimeLayout(elf, go.buildInfo.release, pclntab.addr);
        if (layout.tcpConnItab === undefined) opts.log(`tls: ${shown}: no (net.Conn, *net.TCPConn) itab: endpoints will be unknown`);
        opts.setGoBinary!(lib.id, {
          tcpConnItab: layout.tcpConnItab ?? 0,
          readVaddr: go.read.vaddr,
          writeVaddr: go.write.vaddr,
          ...layout.conn,
        });
        links.push(
          opts.attach({
            program: "tw_go_enter",
            path,
            targets: [
              { offset: go.write.fileOffset, cookie: lib.id | (L.TW_GO_WRITE << 16) },
              { offset: go.read.fileOffset, cookie: lib.id | (L.TW_GO_READ << 16) },
            ],
            retprobe: false,
          }),
        );
        links.push(
          opts.attach({
            program: "tw_go_ret",
            path,
            targets: [...go.write.retOffsets, ...go.read.retOffsets].map((offset) => ({ offset, cookie: lib.id | (L.TW_GO_RET << 16) })),
            retprobe: false,
          }),
        );
        opts.log(`tls: probing ${lib.version} in ${shown} (Write and Read at entry and at ${go.write.retOffsets.length} and ${go.read.retOffsets.length} RETs; offsets from ${layout.source}; ${Math.round(performance.now() - started)} ms)`);
      }
      byFile.set(key, lib);
      libraries.push(lib);
      return true;
    } finally {
      elf.close();
    }
  }

  /** A path from inside a process, opened through its root (it may live in a container). */
  function inProcess(pid: number, path: string): string {
    return path.startsWith("/") ? `/proc/${pid}/root${path}` : `/proc/${pid}/cwd/${path}`;
  }


  /** Considered through the process's root, shown with where that root is. */
  function considerIn(pid: number, path: string): void {
    const real = inProcess(pid, path);
    // The file is often one already known (the host's, or another container's of the same
    // image): no need to ask whose it is.
    const key = fileIdentity(real);
    if (key === undefined || byFile.has(key)) return;
    consider(real, { path, where: opts.rootOf?.(pid) }, key);
  }

  function considerExe(pid: number): void {
    let exe;
    try {
      exe = readlinkSync(`/proc/${pid}/exe`);
    } catch {
      return;
    }
    considerIn(pid, exe.replace(/ \(deleted\)$/, ""));
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
        for (const m of maps.matchAll(/ (\/\S*\/libssl\.so[^\s/]*)$/gm)) considerIn(pid, m[1]!);
      }
    },
    onExec: (pid) => considerExe(pid),
    onLibOpen(pid, path, fd) {
      const before = libraries.length;
      considerIn(pid, path);
      // The process may already have left; its open file may still be reachable.
      if (libraries.length === before && fd >= 0 && !existsSync(inProcess(pid, path))) consider(`/proc/${pid}/fd/${fd}`, { path, where: opts.rootOf?.(pid) });
    },
    close() {
      for (const l of links.splice(0)) l.detach();
    },
  };
}
