// Which TLS libraries (libssl, libgnutls) a program loads as it starts, known before it runs: its DT_NEEDED
// names followed through every library they need (curl -> libcurl -> libssl), each resolved
// the way glibc's loader does, inside the program's own root (a container's files for a
// container's program). An exec held until its file is probed can then have its libssl
// probed too, before the program's first request.
//
// Resolution of a name needed by object O (glibc's order): a name with a slash is a path;
// else O's DT_RPATH (when O has no DT_RUNPATH) and the executable's; LD_LIBRARY_PATH; O's
// DT_RUNPATH; the loader's cache (/etc/ld.so.cache of the root); the default directories.
// $ORIGIN is O's directory. $LIB and $PLATFORM are not expanded (entries with them are
// skipped): they are rare, and a library missed here is still probed when it is opened.
import { readFileSync } from "node:fs";
import { dirname } from "node:path";
import { openElf, ElfError, type ElfDynamic } from "../elfkit/elf.ts";
import { parseLdCache } from "../elfkit/ld-cache.ts";
import { fileIdentity } from "./file-identity.ts";

const DEFAULT_DIRS = ["/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib", "/usr/local/lib"];
/** Libraries looked at per program, at most (a program needs a few dozen). */
const MAX_LIBRARIES = 512;
/** Entries kept in each cache before it is emptied. */
const CACHE_LIMIT = 16_384;

/** OpenSSL's libssl.so*, GnuTLS's libgnutls.so* or NSS's libssl3.so (as the kernel side
 * matches opens). What a file really is, its symbols decide (tls-probes.ts). */
export const isTlsLibraryName = (name: string) => /^(?:libssl|libgnutls|libssl3)\.so/.test(name.slice(name.lastIndexOf("/") + 1));

/** A TLS library a program loads (libssl, libgnutls), and the libcrypto a libssl comes with
 * (OpenSSL's version is there). */
export interface LoadedTlsLibrary {
  /** Paths tapwire can open: `root` + the path inside it. */
  library: string;
  libcrypto?: string;
}

export interface LibraryResolver {
  /**
   * The libssl files the executable loads at start.
   * @param exe a path tapwire can open the executable by
   * @param exeInRoot the executable's path inside its root (for $ORIGIN)
   * @param root "" for tapwire's own root, else e.g. "/proc/PID/root"
   */
  tlsLibrariesOf(exe: string, exeInRoot: string, root: string, ldLibraryPath?: string): LoadedTlsLibrary[];
}

export function createLibraryResolver(): LibraryResolver {
  /** Dynamic section by file identity ("static" files have no needed names). */
  const dynamicByFile = new Map<string, ElfDynamic | null>();
  /** ld.so.cache by its file's identity: containers of one image share one. */
  const ldCacheByFile = new Map<string, Map<string, string>>();

  const remember = <K, V>(m: Map<K, V>, k: K, v: V) => {
    if (m.size >= CACHE_LIMIT) m.clear();
    m.set(k, v);
    return v;
  };

  function dynamicOf(path: string, key: string): ElfDynamic | null {
    const known = dynamicByFile.get(key);
    if (known !== undefined) return known;
    let elf;
    try {
      elf = openElf(path);
    } catch (e) {
      if (e instanceof ElfError) return remember(dynamicByFile, key, null);
      throw e;
    }
    try {
      return remember(dynamicByFile, key, elf.dynamic());
    } catch (e) {
      if (e instanceof ElfError) return remember(dynamicByFile, key, null);
      throw e;
    } finally {
      elf.close();
    }
  }

  function ldCacheOf(root: string): Map<string, string> {
    const path = `${root}/etc/ld.so.cache`;
    const key = fileIdentity(path);
    if (!key) return new Map();
    let cache = ldCacheByFile.get(key);
    if (!cache) {
      try {
        cache = parseLdCache(readFileSync(path));
      } catch {
        cache = new Map();
      }
      remember(ldCacheByFile, key, cache);
    }
    return cache;
  }

  const expand = (list: string | undefined, origin: string) =>
    (list ?? "")
      .split(":")
      .filter((d) => d && !/\$\{?(LIB|PLATFORM)\b/.test(d))
      .map((d) => d.replace(/\$\{ORIGIN\}|\$ORIGIN/g, origin));

  return {
    tlsLibrariesOf(exe, exeInRoot, root, ldLibraryPath) {
      const exeKey = fileIdentity(exe);
      if (!exeKey) return [];
      const exeDynamic = dynamicOf(exe, exeKey);
      if (!exeDynamic?.needed.length) return [];
      const exeRpath = exeDynamic.runpath === undefined ? expand(exeDynamic.rpath, dirname(exeInRoot)) : [];
      const envDirs = expand(ldLibraryPath, dirname(exeInRoot));
      let ldCache: Map<string, string> | undefined;

      /** The file a name needed by an object (at `inRoot`, with `dyn`) resolves to, inside the root. */
      const resolve = (name: string, inRoot: string, dyn: ElfDynamic): string | undefined => {
        if (name.includes("/")) return fileIdentity(root + name) ? name : undefined;
        const origin = dirname(inRoot);
        const dirs = [
          ...(dyn.runpath === undefined ? expand(dyn.rpath, origin) : []),
          ...exeRpath,
          ...envDirs,
          ...expand(dyn.runpath, origin),
        ];
        for (const d of dirs) if (fileIdentity(`${root}${d}/${name}`)) return `${d}/${name}`;
        const cached = (ldCache ??= ldCacheOf(root)).get(name);
        if (cached && fileIdentity(root + cached)) return cached;
        for (const d of DEFAULT_DIRS) if (fileIdentity(`${root}${d}/${name}`)) return `${d}/${name}`;
        return undefined;
      };

      const found: LoadedTlsLibrary[] = [];
      const seen = new Set<string>();
      const queue: [string, ElfDynamic][] = [[exeInRoot, exeDynamic]];
      while (queue.length && seen.size < MAX_LIBRARIES) {
        const [inRoot, dyn] = queue.shift()!;
        for (const name of dyn.needed) {
          const lib = resolve(name, inRoot, dyn);
          if (!lib || seen.has(lib)) continue;
          seen.add(lib);
          const key = fileIdentity(root + lib);
          const libDynamic = key && dynamicOf(root + lib, key);
          if (isTlsLibraryName(lib)) {
            // What libssl needs (libcrypto, libc) carries no libssl.
            const crypto = libDynamic ? libDynamic.needed.find((n) => n.startsWith("libcrypto")) : undefined;
            const libcrypto = crypto && libDynamic ? resolve(crypto, lib, libDynamic) : undefined;
            found.push({ library: root + lib, ...(libcrypto ? { libcrypto: root + libcrypto } : {}) });
            continue;
          }
          if (libDynamic) queue.push([lib, libDynamic]);
        }
      }
      return found;
    },
  };
}
