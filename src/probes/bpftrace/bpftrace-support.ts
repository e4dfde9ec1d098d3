// What the installed bpftrace accepts for uprobes inside a function. A "symbol"+offset probe
// needs a bpftrace built with an instruction decoder (bfd) to check the offset; Debian's 0.17
// has none and refuses such probes, but takes a raw file offset written as the address when
// run with --unsafe. RET probes are written the way the installed bpftrace will run them.
export interface BpftraceSupport {
  /** "v0.17.0"; "" when bpftrace is not installed. */
  version: string;
  /** Whether `uprobe:PATH:"symbol"+offset` is accepted. */
  symbolOffsets: boolean;
}

export function detectBpftrace(bin = "bpftrace"): BpftraceSupport {
  let out = "";
  try {
    const r = Bun.spawnSync([bin, "--info"], { stdout: "pipe", stderr: "pipe" });
    out = r.stdout.toString() + r.stderr.toString();
  } catch {
    return { version: "", symbolOffsets: false };
  }
  return {
    version: /version:\s*(\S+)/.exec(out)?.[1] ?? "",
    symbolOffsets: /^\s*bfd:\s*yes/m.test(out),
  };
}
