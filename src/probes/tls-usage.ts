// Which probed TLS files a running process uses: its executable (Go, or a program carrying
// OpenSSL) and the libraries it maps, compared by file identity, because one library has
// many paths (symlinks, /usr merge, a container's root seen through /proc/PID/root).
import { exeLink, mappedFilesOf, mapsText, rootPath } from "../procs/proc.ts";
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
      const maps = mapsText(pid, procRoot);
      if (maps === undefined) return []; // gone
      const used = new Set<TlsLibrary>();
      // The executable's key is not cached: /proc/PID/exe differs for every process.
      const exeKey = fileIdentity(exeLink(pid, procRoot));
      const exeLib = exeKey ? byKey.get(exeKey) : undefined;
      if (exeLib) used.add(exeLib);
      for (const file of mappedFilesOf(maps)) {
        if (!/\.so[^/]*$/.test(file)) continue;
        const lib = byKey.get(keyOf(rootPath(pid, file, procRoot)) ?? "");
        if (lib) used.add(lib);
      }
      return [...used];
    },
  };
}
