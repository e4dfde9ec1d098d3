// Which probed TLS files a running process uses: its executable (Go, or a program carrying
// OpenSSL) and the libraries it maps, compared by file identity, because one library has
// many paths (symlinks, /usr merge, a container's root seen through /proc/PID/root).
import { readFileSync } from "node:fs";
import { fileIdentity } from "./file-identity.ts";
import type { TlsLibrary } from "./tls-probes.ts";

export interface TlsUsage {
  /** The probed libraries the process uses (none when it is gone). */
  ofProcess(pid: number): TlsLibrary[];
}

export function createTlsUsage(libraries: readonly TlsLibrary[], procRoot = "/proc"): TlsUsage {
  const byKey = new Map(libraries.map((l) => [l.fileKey, l]));
  const keys = new Map<string, string | undefined>();
  const keyOf = (path: string) => {
    if (!keys.has(path)) {
      keys.set(path, fileIdentity(path));
    }
    return keys.get(path);
  };
  return {
    ofProcess(pid) {
      if (!byKey.size) return [];
      let maps;
      try {
        maps = readFileSync(`${procRoot}/${pid}/maps`, "latin1");
      } catch {
        return [];
      }
      const used = new Set<TlsLibrary>();
      // The executable's key is not cached: /proc/PID/exe differs for every process.
      const exeKey = fileIdentity(`${procRoot}/${pid}/exe`);
      const exeLib = exeKey ? byKey.get(exeKey) : undefined;
      if (exeLib) used.add(exeLib);
      for (const m of maps.matchAll(/ (\/\S+\.so[^\s/]*)$/gm)) {
        const lib = byKey.get(keyOf(`${procRoot}/${pid}/root${m[1]}`) ?? "");
        if (lib) used.add(lib);
      }
      return [...used];
    },
  };
}
