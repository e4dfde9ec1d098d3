// The exported functions of a TLS library, as the probes need them: defined, code, with a
// place in the file. What each library's module asks of its file (openssl.ts, gnutls.ts, nss.ts).
import { openElf, ElfError, searchRodata } from "../elfkit/elf.ts";

export interface ExportedFunction {
  name: string;
  /** enum tw_ssl_fn. */
  fn: number;
  offset: number;
  vaddr: number;
  size: number;
}

/**
 * `pick` chooses from the names the file exports (of those asked) which to probe, each with
 * its tw_ssl_fn, or undefined when the file is not that library. A file that is not ELF is
 * no library: [].
 */
export function exportedFunctions(path: string, asked: Iterable<string>, pick: (has: (name: string) => boolean) => [string, number][] | undefined): ExportedFunction[] {
  let elf;
  try {
    elf = openElf(path);
  } catch (e) {
    if (e instanceof ElfError) return [];
    throw e;
  }
  try {
    const syms = elf.symbols(new Set(asked));
    const has = (n: string) => !!syms.get(n)?.defined && syms.get(n)!.isFunction && Number.isFinite(syms.get(n)!.fileOffset);
    return (pick(has) ?? []).map(([name, fn]) => {
      const sym = syms.get(name)!;
      return { name, fn, offset: sym.fileOffset, vaddr: sym.value, size: sym.size };
    });
  } finally {
    elf.close();
  }
}

/** The first group of `pattern` found at `mark` in a file's read-only data, or undefined
 * (the file cannot be read, or says no version there). */
export function versionInFile(path: string, mark: Buffer, pattern: RegExp): string | undefined {
  let elf;
  try {
    elf = openElf(path);
  } catch {
    return undefined;
  }
  try {
    return searchRodata(elf, mark, pattern)?.[1];
  } finally {
    elf.close();
  }
}
