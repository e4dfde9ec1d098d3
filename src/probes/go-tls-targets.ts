// Where in a Go executable crypto/tls's plaintext can be seen: the entry (or its cheaper
// equivalent past the stack check, src/probes/uprobe-placement.ts) and every RET of
// crypto/tls.(*Conn).Write and of crypto/tls.(*Conn).Read, as file offsets (what uprobes are
// placed by). Found through elfkit: build info for the Go version,
// the function table (stripped binaries too), decoded instructions for the RETs.
import type { ElfFile } from "../elfkit/elf.ts";
import { readGoBuildInfo, type GoBuildInfo } from "../elfkit/go-buildinfo.ts";
import { readGoFunctions, type GoFunctionTable } from "../elfkit/gopclntab.ts";
import { decodeX86, findRets, retsOf } from "../elfkit/decode.ts";
import { entryPlacement, placeGoEntry, type GoPlacement } from "./uprobe-placement.ts";
import type { PlacementMode } from "./openssl.ts";

export const GO_TLS_READ = "crypto/tls.(*Conn).Read";
export const GO_TLS_WRITE = "crypto/tls.(*Conn).Write";

export interface GoTlsFunction {
  name: string;
  /** The function's entry. */
  vaddr: number;
  /** Where its entry probe goes (`once`: past the stack check). */
  entry: GoPlacement;
  /** The file offset of entry.vaddr. */
  fileOffset: number;
  /** File offsets of its RET instructions. */
  retOffsets: number[];
  /** Those its RET probes go on: none for Write past its stack check (its result is not
   * needed, and only a restart needed telling from a new call). */
  probedRets: number[];
}

export interface GoTlsTargets {
  buildInfo: GoBuildInfo;
  /** Set when tapwire would not probe this binary, saying why. */
  unsupported?: string;
  read?: GoTlsFunction;
  write?: GoTlsFunction;
}

/** A Go executable tapwire's probes can read arguments of: its build info and function
 * table, or why not (`unsupported`); undefined for a file that is not a Go executable. */
export function goProbeable(elf: ElfFile, machines: ElfFile["machine"][]): { buildInfo: GoBuildInfo; table?: GoFunctionTable; unsupported?: string } | undefined {
  const buildInfo = readGoBuildInfo(elf);
  if (!buildInfo) return undefined;
  const [major, minor] = buildInfo.release;
  if (major === 1 && minor < 17) return { buildInfo, unsupported: `${buildInfo.version} passes arguments on the stack (Go 1.17+ register ABI needed)` };
  if (!machines.includes(elf.machine)) return { buildInfo, unsupported: `only ${machines.join(" and ")} Go binaries are supported` };
  const table = readGoFunctions(elf);
  if (!table) return { buildInfo, unsupported: "no Go function table (.gopclntab)" };
  return { buildInfo, table };
}

/** undefined for a file that is not a Go executable. Needs decode.loadDecoder() first on x86-64. */
export function goTlsTargets(elf: ElfFile, mode: PlacementMode = "chosen"): GoTlsTargets | undefined {
  const go = goProbeable(elf, ["x86-64", "arm64"]);
  if (!go?.table) return go;
  const { buildInfo, table } = go;
  const found = table.find([GO_TLS_READ, GO_TLS_WRITE]);
  const read = found.get(GO_TLS_READ);
  const write = found.get(GO_TLS_WRITE);
  if (!read || !write) return { buildInfo, unsupported: "it does not use crypto/tls" };
  const offset = (vaddr: number) => {
    const off = elf.fileOffset(vaddr);
    if (off === undefined) throw new Error(`${elf.path}: 0x${vaddr.toString(16)} is not in the file`);
    return off;
  };
  const functions: GoTlsFunction[] = [];
  for (const [name, f] of [[GO_TLS_WRITE, write], [GO_TLS_READ, read]] as const) {
    // x86-64 code is decoded once, for the RETs and the entry probe's place.
    const code = elf.machine === "x86-64" ? decodeX86(elf, f.entry, f.end) : undefined;
    const rets = code ? retsOf(code) : findRets(elf, f.entry, f.end);
    if (rets.undecodable.length) return { buildInfo, unsupported: `${name} does not decode at 0x${rets.undecodable[0]!.toString(16)}` };
    if (!rets.rets.length) return { buildInfo, unsupported: `${name} has no RET` };
    const entry: GoPlacement =
      mode === "chosen" && code ? placeGoEntry(elf, f.entry, f.end - f.entry, code) : { ...entryPlacement(elf, f.entry, "entry (--uprobe-placement entry)"), once: false };
    const retOffsets = rets.rets.map(offset);
    functions.push({ name, vaddr: f.entry, entry, fileOffset: offset(entry.vaddr), retOffsets, probedRets: name === GO_TLS_WRITE && entry.once ? [] : retOffsets });
  }
  return { buildInfo, write: functions[0], read: functions[1] };
}
