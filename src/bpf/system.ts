// What the kernel and the machine must offer before tapwire can load, each as a check with
// a one-line reason and a fix. The loader stops at the first failure; `tapwire doctor`
// runs them all.
import { existsSync, readFileSync, statSync } from "node:fs";
import { libbpf, libbpfInfo, libc, errno, strerror, SetupError } from "./libbpf.ts";

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
  fix?: string;
}

const TRACEFS_DIRS = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];
const BPF_MAP_TYPE_RINGBUF = 27;

/** The tracefs mount holding events/, or "" when none is mounted. */
export function tracefsRoot(): string {
  for (const dir of TRACEFS_DIRS) if (existsSync(`${dir}/events`)) return dir;
  return "";
}

/** Mount tracefs where libbpf looks for tracepoint ids, if nothing is mounted there. */
export function ensureTracefs(): string {
  const found = tracefsRoot();
  if (found) return found;
  const target = TRACEFS_DIRS[0];
  if (!existsSync(target)) throw new SetupError(`tracefs is not available: ${target} does not exist`, "the kernel needs CONFIG_FTRACE");
  const rc = libc().mount(Buffer.from("tracefs\0"), Buffer.from(`${target}\0`), Buffer.from("tracefs\0"), 0, null);
  if (rc !== 0) {
    throw new SetupError(`cannot mount tracefs on ${target}: ${strerror(errno())}`, `mount -t tracefs nodev ${target}`);
  }
  return target;
}

export function isRoot(): boolean {
  return libc().geteuid() === 0;
}

function checkRoot(): Check {
  return isRoot()
    ? { name: "privileges", ok: true, detail: "running as root" }
    : { name: "privileges", ok: false, detail: "not running as root", fix: "run tapwire with sudo, or as root with CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN" };
}

function checkBtf(): Check {
  const path = "/sys/kernel/btf/vmlinux";
  const st = existsSync(path) ? statSync(path) : undefined;
  if (!st || !st.isFile() || st.size === 0) {
    return { name: "BTF", ok: false, detail: `${path} is missing: the kernel has no BTF`, fix: "use a kernel built with CONFIG_DEBUG_INFO_BTF=y (most distributions since 2020)" };
  }
  return { name: "BTF", ok: true, detail: `${path} (${Math.round(st.size / 1024)} KiB)` };
}

function checkLibbpf(): Check {
  try {
    const { soname, version } = libbpfInfo();
    const [major, minor] = version.split(".").map(Number);
    if (major < 1) return { name: "libbpf", ok: false, detail: `${soname} is libbpf ${version}; 1.0 or newer is needed`, fix: "apt-get install libbpf1" };
    return { name: "libbpf", ok: true, detail: `${soname} (libbpf ${major}.${minor})` };
  } catch (e) {
    const err = e as SetupError;
    return { name: "libbpf", ok: false, detail: err.message, fix: err.hint };
  }
}

function checkRingbuf(): Check {
  try {
    const rc = libbpf().libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, null);
    if (rc === 1) return { name: "ring buffer", ok: true, detail: "BPF ring buffer maps are supported" };
    const why = rc < 0 ? strerror(-rc) : "not supported by this kernel";
    return { name: "ring buffer", ok: false, detail: `BPF ring buffer: ${why}`, fix: rc === -1 ? "run as root" : "Linux 5.8 or newer is needed" };
  } catch (e) {
    return { name: "ring buffer", ok: false, detail: "cannot probe without libbpf", fix: (e as SetupError).hint };
  }
}

function checkTracepoints(): Check {
  let root = tracefsRoot();
  if (!root && isRoot()) {
    try {
      root = ensureTracefs();
    } catch (e) {
      return { name: "tracepoints", ok: false, detail: (e as Error).message, fix: (e as SetupError).hint };
    }
  }
  if (!root) return { name: "tracepoints", ok: false, detail: "tracefs is not mounted", fix: "mount -t tracefs nodev /sys/kernel/tracing (tapwire does this itself as root)" };
  const needed = ["syscalls/sys_enter_read", "syscalls/sys_exit_read", "syscalls/sys_enter_sendmsg", "sched/sched_process_exec", "sched/sched_process_exit"];
  const missing = needed.filter((t) => !existsSync(`${root}/events/${t}/id`));
  if (missing.length) return { name: "tracepoints", ok: false, detail: `missing: ${missing.join(", ")}`, fix: "the kernel needs CONFIG_FTRACE_SYSCALLS" };
  return { name: "tracepoints", ok: true, detail: `syscall and sched tracepoints under ${root}` };
}

function checkUprobes(): Check {
  const root = tracefsRoot();
  const ok = existsSync("/sys/bus/event_source/devices/uprobe") || (root !== "" && existsSync(`${root}/uprobe_events`));
  return ok
    ? { name: "uprobes", ok: true, detail: "uprobe events are supported (for TLS libraries)" }
    : { name: "uprobes", ok: false, detail: "no uprobe support", fix: "the kernel needs CONFIG_UPROBE_EVENTS (TLS capture only)" };
}

function checkKernel(): Check {
  const release = readFileSync("/proc/sys/kernel/osrelease", "utf8").trim();
  const [maj, min] = release.split(".").map((x) => parseInt(x, 10));
  const ok = maj > 5 || (maj === 5 && min >= 17);
  return { name: "kernel", ok, detail: `Linux ${release}`, fix: ok ? undefined : "Linux 5.17 or newer is needed (BPF ring buffer and bpf_loop)" };
}

/** Every check, in order, for `tapwire doctor`. */
export function runChecks(): Check[] {
  return [checkKernel(), checkRoot(), checkBtf(), checkLibbpf(), checkRingbuf(), checkTracepoints(), checkUprobes()];
}

/** The checks the loader cannot do without; throws the first failure as a SetupError. */
export function checkSystem(): void {
  for (const check of [checkRoot, checkBtf, checkLibbpf]) {
    const c = check();
    if (!c.ok) throw new SetupError(c.detail, c.fix);
  }
}
