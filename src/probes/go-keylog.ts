// Where a Go executable's TLS secrets can be read: the entry of
// crypto/tls.(*Config).writeKeyLog, which every handshake calls once per secret it derives,
// whether a key log is configured or not (the function itself checks). Its arguments are
// read from registers, so only x86-64 binaries of Go 1.17+ (register ABI) qualify.
import type { ElfFile } from "../elfkit/elf.ts";
import type { GoBuildInfo } from "../elfkit/go-buildinfo.ts";
import { goProbeable } from "./go-tls-targets.ts";

export const GO_WRITE_KEY_LOG = "crypto/tls.(*Config).writeKeyLog";

export interface GoKeyLogTarget {
  buildInfo: GoBuildInfo;
  /** The function's entry as a file offset; absent when `unsupported` says why. */
  fileOffset?: number;
  unsupported?: string;
}

/** undefined for a file that is not a Go executable. */
export function goKeyLogTarget(elf: ElfFile): GoKeyLogTarget | undefined {
  const go = goProbeable(elf, ["x86-64"]); // arguments read from x86-64 registers
  if (!go?.table) return go;
  const { buildInfo, table } = go;
  const f = table.find([GO_WRITE_KEY_LOG]).get(GO_WRITE_KEY_LOG);
  if (!f) return { buildInfo, unsupported: "it does not use crypto/tls" };
  const fileOffset = elf.fileOffset(f.entry);
  if (fileOffset === undefined) return { buildInfo, unsupported: `${GO_WRITE_KEY_LOG} is not in the file` };
  return { buildInfo, fileOffset };
}
