// Finds every TLS library in use on the host and puts tapwire's uprobes on it, once per
// file (src/probes/file-identity.ts): each OpenSSL (SSL_read, SSL_write, their _ex forms and
// the calls that tell which socket an SSL object uses), each GnuTLS (its record calls,
// src/probes/gnutls.ts), each NSS (NSPR's calls on its SSL sockets, src/probes/nss.ts) and
// each Go executable that uses
// crypto/tls ((*Conn).Write and (*Conn).Read at entry and at every RET).
//  - at start: the system's libssl from the loader's cache, every libssl.so* mapped by a
//    running process, and every running executable (node carries OpenSSL; Go programs);
//  - an exec held until its file is probed (src/probes/exec-hold.ts): the executable, and
//    the libssl it will load (its DT_NEEDED chain, src/probes/library-deps.ts) — before the
//    program runs a single instruction;
//  - then event-driven: a process that execs (its executable, when the exec was not held),
//    and a process that opens a file named libssl.so* (dlopen, Python's lazy `import ssl`).
// Every file is opened first and looked at and attached through tapwire's own descriptor, so
// a process that exits meanwhile cannot make a file unreachable. What a file turned out to be
// is remembered for the life of tapwire; a failure that may pass (the file went away, an
// attach refused) is not, and the file is tried again on its next use.
import { closeSync, openSync, readFileSync, statSync } from "node:fs";
import { exeLink, exePath, fdPath, linkTarget, mappedFiles, pids, rootPath } from "../procs/proc.ts";
import { openElf, ElfError } from "../elfkit/elf.ts";
import { parseLdCache } from "../elfkit/ld-cache.ts";
import { GoPclntabError } from "../elfkit/gopclntab.ts";
import type { GoBinaryConfig, UprobeLink, UprobeSpec } from "../bpf/loader.ts";
import { goTlsTargets, type GoTlsFunction } from "./go-tls-targets.ts";
import { goRuntimeLayout, GoLayoutError } from "./go-runtime-layout.ts";
import { fileIdentity } from "./file-identity.ts";
import { createLibraryResolver, isTlsLibraryName, type LoadedTlsLibrary } from "./library-deps.ts";
import { opensslFunctions, opensslProbes, opensslVersion, type PlacementMode } from "./openssl.ts";
import { describeOpensslPlaces } from "./uprobe-placement.ts";
import { gnutlsFunctions, gnutlsProbes, gnutlsVersion } from "./gnutls.ts";
import { isNssLibssl, nssProbes, nssVersion, nsprBeside } from "./nss.ts";
import { dirname } from "node:path";
import * as L from "../bpf/gen/layout.ts";

export interface TlsLibrary {
  /** Small id, carried in the uprobes' cookies and on connections (never 0). */
  id: number;
  path: string;
  /** "OpenSSL 3.0.19" ("OpenSSL" when the version cannot be read), "GnuTLS 3.7.9", or "Go go1.19.8 crypto/tls". */
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

/** What looking at a file settled: "known" for good (probed, or nothing to probe), or "retry"
 * (it could not be looked at for a reason that may pass). */
export type FileVerdict = "known" | "retry";

export interface TlsProbes {
  /** Look at what runs now. */
  scanRunning(): void;
  /** A process exec'd (the kernel's exec event): its executable may carry OpenSSL, or be Go. */
  onExec(pid: number): void;
  /**
   * An exec waiting for this answer: `file` opens its executable (tapwire's descriptor of it,
   * /proc/self/fd/N). The executable, and the libssl it loads at start, are probed before it
   * returns. `ldLibraryPath` is the new program's LD_LIBRARY_PATH, when it has one.
   */
  onHeldExec(pid: number, file: string, ldLibraryPath?: string): FileVerdict;
  /** What onHeldExec left for after the exec was let go (`file` must still be open). */
  finishHeld(): void;
  /** A process opened a file named libssl.so*. */
  onLibOpen(pid: number, path: string, fd: number): void;
  /** The library behind an id from a connection. */
  library(id: number): TlsLibrary | undefined;
  readonly libraries: TlsLibrary[];
  /** Paths of the executables and libraries known now (for the exec holder's ignore marks). */
  knownPaths(): string[];
  close(): void;
}

/** Attempts at a file whose probing failed for a reason that may pass, before giving up. */
const MAX_TRIES = 3;

/** Paths of the system's libssl, from the dynamic loader's cache. */
function systemLibssl(): string[] {
  try {
    return [...parseLdCache(readFileSync("/etc/ld.so.cache")).entries()].filter(([name]) => isTlsLibraryName(name)).map(([, path]) => path);
  } catch {
    return [];
  }
}

/** A directory's device and inode ("" when it is gone): tells one root from another. */
function directoryIdentity(path: string): string {
  try {
    const st = statSync(`${path}/`);
    return `${st.dev}:${st.ino}`;
  } catch {
    return "";
  }
}

/** Analysis that found the file unfit (remembered), as opposed to I/O or attach failures
 * and a file cut short (it may still be being written). */
const isAnalysisError = (e: unknown) =>
  (e instanceof ElfError && !/truncated/.test(e.message)) || e instanceof GoLayoutError || e instanceof GoPclntabError;

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
  /** Where uprobes go (--uprobe-placement): "chosen" unless told. */
  placement?: PlacementMode;
}): TlsProbes {
  const placement = opts.placement ?? "chosen";
  const byFile = new Map<string, TlsLibrary | null>(); // identity -> library, or null: nothing to probe
  const tries = new Map<string, number>();
  /** A path each known file was seen by, for knownPaths(). */
  const seenAt = new Map<string, string>();
  const libraries: TlsLibrary[] = [];
  const links: UprobeLink[] = [];
  const deps = createLibraryResolver();
  /** The held executable being looked at (its descriptor stays open until finishHeld), and
   * what is left to do once its exec has been let go. */
  let deferring: string | undefined;
  const afterHeld: (() => void)[] = [];
  /** Executables classified while their exec was held, by pid: the exec event that follows
   * is answered from here (the held descriptor may name the file by another identity than
   * /proc/PID/exe does: a container's file is the layer's file under the overlay's). */
  const heldExecs = new Map<number, string>();

  /**
   * Opens `path` and looks at the file through tapwire's own descriptor. `as` is the file as
   * the user knows it; `named` a path its neighbours are found by (OpenSSL's libcrypto);
   * `libcrypto` the libcrypto it is loaded with, when known.
   */
  function considerPath(path: string, as: FileName, named = path, libcrypto?: string): FileVerdict {
    let fd: number;
    try {
      fd = openSync(path, "r");
    } catch {
      return "retry"; // gone, or not ours to open: tried again on its next use
    }
    try {
      return consider(fdPath("self", fd), as, named, undefined, libcrypto);
    } finally {
      closeSync(fd);
    }
  }

  /** `file` is tapwire's descriptor of it (/proc/self/fd/N). */
  function consider(file: string, as: FileName, named: string, key = fileIdentity(file), libcrypto?: string): FileVerdict {
    if (key === undefined) return "retry"; // not a regular file, or gone
    if (byFile.has(key)) return "known";
    const shown = as.where ? `${as.path} (${as.where})` : as.path;
    try {
      const lib = probeOpenssl(file, as, shown, key, named, libcrypto) ?? probeGnutls(file, as, shown, key) ?? probeNss(file, as, shown, key, named) ?? probeGo(file, as, shown, key);
      byFile.set(key, lib);
      if (!seenAt.has(key) && seenAt.size < 65_536) seenAt.set(key, named);
      tries.delete(key);
      return "known";
    } catch (e) {
      // The file's own name is in `shown`; errors name it by tapwire's descriptor.
      const why = (e as Error).message.replaceAll(`${file}: `, "");
      if (isAnalysisError(e)) {
        byFile.set(key, null);
        opts.log(`tls: not probing ${shown}: ${why}`);
        return "known";
      }
      const n = (tries.get(key) ?? 0) + 1;
      if (tries.size >= 4096) tries.clear();
      if (n >= MAX_TRIES) {
        byFile.set(key, null);
        tries.delete(key);
        opts.log(`tls: cannot probe ${shown}: ${why} (given up after ${n} tries)`);
        return "known";
      }
      tries.set(key, n);
      opts.log(`tls: cannot probe ${shown}: ${why} (tried again on its next use)`);
      return "retry";
    }
  }

  function probeOpenssl(file: string, as: FileName, shown: string, key: string, named: string, libcrypto?: string): TlsLibrary | undefined {
    const functions = opensslFunctions(file);
    if (!functions.length) return undefined;
    const probes = opts.attach ? opensslProbes(file, functions, placement) : [];
    const lib: TlsLibrary = { id: libraries.length + 1, path: as.path, where: as.where, version: "OpenSSL", functions: functions.map((f) => f.name), fileKey: key };
    const finish = () => {
      lib.version = opensslVersion(file, named, libcrypto);
      if (opts.attach) opts.log(`tls: probing ${lib.version} in ${shown} (${lib.functions.join(", ")}; ${describeOpensslPlaces(probes)})`);
    };

    if (opts.attach) attachSslShaped(file, lib, probes);
    // A held executable's version is read once its exec has been let go (node's takes ~8 ms
    // to find), before any of its traffic is read.
    if (deferring === file) afterHeld.push(finish);
    else finish();
    libraries.push(lib);
    return lib;
  }

  /** The entry programs and, for each probe that returns data, a return probe. */
  function attachSslShaped(file: string, lib: TlsLibrary, probes: { offset: number; fn: number; returns: boolean; flags?: number }[]): void {
    const targets = probes.map((p) => ({ offset: p.offset, cookie: lib.id | (p.fn << 16) | (p.flags ?? 0), returns: p.returns }));
    const entry = opts.attach!({ program: "tw_ssl_enter", path: file, targets: targets.map(({ offset, cookie }) => ({ offset, cookie })), retprobe: false });
    try {
      // SSL_free (gnutls_deinit) needs no return probe.
      const returning = targets.filter((t) => t.returns).map(({ offset, cookie }) => ({ offset, cookie }));
      links.push(opts.attach!({ program: "tw_ssl_exit", path: file, targets: returning, retprobe: true }));
    } catch (e) {
      entry.detach();
      throw e;
    }
    links.push(entry);
  }

  /** GnuTLS: its record calls at their entries, with return probes (gnutls.ts). */
  function probeGnutls(file: string, as: FileName, shown: string, key: string): TlsLibrary | undefined {
    const functions = gnutlsFunctions(file);
    if (!functions.length) return undefined;
    const lib: TlsLibrary = { id: libraries.length + 1, path: as.path, where: as.where, version: gnutlsVersion(file), functions: functions.map((f) => f.name), fileKey: key };
    if (opts.attach) {
      const probes = gnutlsProbes(file, functions, placement);
      attachSslShaped(file, lib, probes);
      const moved = probes.filter((p) => p.place.vaddr !== functions.find((f) => f.name === p.name)!.vaddr).map((p) => `${p.name} at ${p.place.instruction}`);
      opts.log(`tls: probing ${lib.version} in ${shown} (${lib.functions.join(", ")}; ${moved.length ? `entries, but ${moved.join(", ")}` : "at entries"})`);
    }
    libraries.push(lib);
    return lib;
  }

  /** NSS: SSL_ImportFD and SSL_ForceHandshake in libssl3, and the NSPR calls in the
   * libnspr4 beside it, once per NSPR file (nss.ts). */
  function probeNss(file: string, as: FileName, shown: string, key: string, named: string): TlsLibrary | undefined {
    if (!isNssLibssl(file)) return undefined;
    const nspr = nsprBeside(named);
    if (!nspr) throw new ElfError(`NSS without libnspr4.so beside it (${dirname(named)})`);
    const nsprKey = fileIdentity(nspr);
    const probes = nssProbes(file, nspr);
    const lib: TlsLibrary = { id: libraries.length + 1, path: as.path, where: as.where, version: nssVersion(file), functions: probes.map((p) => p.name), fileKey: key };
    if (opts.attach) {
      attachSslShaped(file, lib, probes.filter((p) => p.file === file));
      const nsprKnown = nsprKey !== undefined && byFile.has(nsprKey);
      if (!nsprKnown) attachSslShaped(nspr, lib, probes.filter((p) => p.file === nspr));
      opts.log(`tls: probing ${lib.version} in ${shown} (SSL_ImportFD, SSL_ForceHandshake; ${nsprKnown ? "NSPR already probed" : `PR_Write, PR_Send, PR_Writev, PR_Read, PR_Recv, PR_Close in ${nspr}, counted on SSL sockets only`})`);
    }
    if (nsprKey !== undefined && !byFile.has(nsprKey)) byFile.set(nsprKey, lib);
    libraries.push(lib);
    return lib;
  }

  /** The Go library, or null when the file is not a Go program to probe. */
  function probeGo(file: string, as: FileName, shown: string, key: string): TlsLibrary | null {
    const started = performance.now();
    let elf;
    try {
      elf = openElf(file);
    } catch (e) {
      if (e instanceof ElfError) return null; // not ELF (a script): nothing to probe
      throw e;
    }
    try {
      const go = goTlsTargets(elf, placement);
      if (!go) return null;
      if (go.unsupported || !go.read || !go.write) {
        if (go.unsupported && go.unsupported !== "it does not use crypto/tls") opts.log(`tls: not probing ${shown}: ${go.unsupported}`);
        return null;
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
          return null;
        }
        const pclntab = (elf.section(".gopclntab") ?? elf.section(".data.rel.ro.gopclntab"))!;
        const layout = goRuntimeLayout(elf, go.buildInfo.release, pclntab.addr);
        if (layout.tcpConnItab === undefined) opts.log(`tls: ${shown}: no (net.Conn, *net.TCPConn) itab: endpoints will be unknown`);
        const { write, read } = go;
        // The kernel side finds the load bias from the probe's address: the places', not the entries'.
        opts.setGoBinary!(lib.id, {
          tcpConnItab: layout.tcpConnItab ?? 0,
          readVaddr: read.entry.vaddr,
          writeVaddr: write.entry.vaddr,
          ...layout.conn,
        });
        const once = (f: GoTlsFunction) => (f.entry.once ? L.TW_COOKIE_ONCE : 0);
        const entry = opts.attach({
          program: "tw_go_enter",
          path: file,
          targets: [
            { offset: write.fileOffset, cookie: lib.id | (L.TW_GO_WRITE << 16) | once(write) },
            { offset: read.fileOffset, cookie: lib.id | (L.TW_GO_READ << 16) | once(read) },
          ],
          retprobe: false,
        });
        const rets = [...write.probedRets, ...read.probedRets];
        try {
          links.push(opts.attach({ program: "tw_go_ret", path: file, targets: rets.map((offset) => ({ offset, cookie: lib.id | (L.TW_GO_RET << 16) })), retprobe: false }));
        } catch (e) {
          entry.detach();
          throw e;
        }
        links.push(entry);
        const at = (f: GoTlsFunction) => (f.entry.vaddr === f.vaddr ? "at entry" : `past the stack check (${f.entry.instruction})`);
        const writeRets = write.probedRets.length ? `${write.probedRets.length} RETs` : "no RET";
        opts.log(
          `tls: probing ${lib.version} in ${shown} (Write ${at(write)} and ${writeRets}, Read ${at(read)} and ${read.probedRets.length} RETs; offsets from ${layout.source}; ${(performance.now() - started).toFixed(1)} ms)`,
        );
      }
      libraries.push(lib);
      return lib;
    } finally {
      elf.close();
    }
  }

  /** A library named by a process (a path in its root), looked at through its root. */
  function considerIn(pid: number, path: string, libcrypto?: string): FileVerdict {
    const real = rootPath(pid, path);
    // Usually a file already known (the host's, or another container's of the same image):
    // no need to open it or ask whose root it is.
    const key = fileIdentity(real);
    if (key !== undefined && byFile.has(key)) return "known";
    return considerPath(real, { path, where: opts.rootOf?.(pid) }, real, libcrypto);
  }

  /** Executables (with their root and library path) whose libraries were followed. */
  const followed = new Set<string>();

  /** The libssl an executable loads at start, probed through the process's root; once per
   * executable, root and LD_LIBRARY_PATH. */
  function considerDependencies(pid: number, exe: string, exeInRoot: string, ldLibraryPath?: string): FileVerdict {
    let verdict: FileVerdict = "known";
    const root = rootPath(pid);
    const done = `${fileIdentity(exe)}|${directoryIdentity(root)}|${ldLibraryPath ?? ""}`;
    if (followed.has(done)) return "known";
    let libs: LoadedTlsLibrary[];
    try {
      libs = deps.tlsLibrariesOf(exe, exeInRoot, root, ldLibraryPath);
    } catch (e) {
      opts.log(`tls: cannot follow the libraries of ${exeInRoot}: ${(e as Error).message}`);
      return "retry";
    }
    for (const lib of libs) if (considerIn(pid, lib.library.slice(root.length), lib.libcrypto) === "retry") verdict = "retry";
    if (verdict === "known") {
      if (followed.size >= 16_384) followed.clear();
      followed.add(done);
    }
    return verdict;
  }

  function considerExe(pid: number): void {
    const shown = exePath(pid);
    if (shown === undefined) return;
    // The link opens the very file the process runs, in whatever root, even deleted.
    considerPath(exeLink(pid), { path: shown, where: opts.rootOf?.(pid) }, rootPath(pid, shown));
  }

  return {
    libraries,
    library: (id) => libraries[id - 1],
    knownPaths: () => [...seenAt.values()],
    scanRunning() {
      for (const path of systemLibssl()) considerPath(path, { path });
      for (const pid of pids()) {
        if (pid === process.pid) continue;
        considerExe(pid);
        for (const file of mappedFiles(pid)) {
          // The dynamic loader is opened for exec by every program that starts: settled now,
          // it is never held (src/probes/exec-hold.ts).
          if (isTlsLibraryName(file) || /\/ld-(?:linux|musl)[^/]*\.so[^/]*$/.test(file)) considerIn(pid, file);
        }
      }
    },
    onExec(pid) {
      const held = heldExecs.get(pid);
      if (held !== undefined) {
        heldExecs.delete(pid);
        // Its file and libraries were looked at while the exec waited; the same file seen
        // through /proc/PID/exe is known by that identity too.
        const key = fileIdentity(exeLink(pid));
        if (key !== undefined && !byFile.has(key) && byFile.has(held)) byFile.set(key, byFile.get(held)!);
        return;
      }
      considerExe(pid);
      const shown = exePath(pid);
      if (shown !== undefined) considerDependencies(pid, exeLink(pid), shown);
    },
    onHeldExec(pid, file, ldLibraryPath) {
      const key = fileIdentity(file);
      if (key === undefined) return "retry";
      const shown = linkTarget(file);
      if (shown === undefined) return "retry";
      const as = { path: shown, where: opts.rootOf?.(pid) };
      deferring = file;
      let verdict: FileVerdict;
      try {
        verdict = consider(file, as, rootPath(pid, shown), key);
      } finally {
        deferring = undefined;
      }
      // The program's own file comes first; its interpreter (ld.so, or a script's) after it.
      if (verdict === "known" && !heldExecs.has(pid)) {
        if (heldExecs.size >= 4096) heldExecs.clear();
        heldExecs.set(pid, key);
      }
      // A program that carries no TLS of its own may load a libssl nothing has loaded yet.
      if (byFile.get(key) === null && considerDependencies(pid, file, shown, ldLibraryPath) === "retry") verdict = "retry";
      return verdict;
    },
    finishHeld() {
      for (const f of afterHeld.splice(0)) f();
    },
    onLibOpen(pid, path, fd) {
      // A loader never opens a library through procfs; another tapwire looking at a file
      // through a process's root does (/proc/PID/root/...): that is not a program loading it.
      if (path.startsWith("/proc/")) return;
      // By its path in the process's root; when that is gone (the process has left), by the
      // process's descriptor, which may still be open.
      if (considerIn(pid, path) === "retry" && fd >= 0) considerPath(fdPath(pid, fd), { path, where: opts.rootOf?.(pid) }, rootPath(pid, path));
    },
    close() {
      for (const l of links.splice(0)) l.detach();
    },
  };
}
