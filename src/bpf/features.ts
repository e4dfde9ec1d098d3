// Kernel features tapwire uses where the kernel has them, found out by trying, once per
// process: a kernel's version says little about what it can do (distributions backport
// features, configurations leave them out).
import { ptr } from "bun:ffi";
import { bpfSyscall, libc, strerror, withSignalsBlocked, BPF_LINK_CREATE, BPF_PROG_LOAD, BPF_TRACE_UPROBE_MULTI } from "./libbpf.ts";

export interface FeatureAnswer {
  supported: boolean;
  /** What the kernel answered, in words: why not, or how we know. */
  reason: string;
}

const BPF_PROG_TYPE_KPROBE = 2;
const EBADF = 9;
const E2BIG = 7;
const EINVAL = 22;
const EOPNOTSUPP = 95;

/** r0 = 0; exit: the smallest program the verifier accepts. */
const RETURN_ZERO = new Uint8Array([0xb7, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]);
const LICENSE = Buffer.from("GPL\0");
const PROGRAM_NAME = "tw_feature";

let uprobeMulti: FeatureAnswer | undefined;

/**
 * Whether this kernel makes multi-uprobe links (BPF_TRACE_UPROBE_MULTI, Linux 6.6+): one link
 * for many uprobes in a file, attached and, above all, detached at once — a single uprobe's
 * detach waits for the kernel (~110 ms each, one at a time). The Go probes need them.
 *
 * Asked by loading a program that returns 0 as a kprobe program for such links, and asking
 * for a link on "/": a kernel that knows these links looks the path up and refuses a
 * directory (EBADF); one that does not refuses the attach type (EINVAL), or the program (E2BIG),
 * and one built without uprobes says EOPNOTSUPP. No link is ever made. Needs root, as the
 * loader does; any other answer is a no, with its reason.
 */
export function probeUprobeMulti(): FeatureAnswer {
  uprobeMulti ??= askUprobeMulti();
  return uprobeMulti;
}

export function uprobeMultiSupported(): boolean {
  return probeUprobeMulti().supported;
}

function askUprobeMulti(): FeatureAnswer {
  const feature = "multi-uprobe links (Linux 6.6+)";
  if (process.arch !== "x64") return { supported: false, reason: `${feature}: not tried on ${process.arch}` };

  // union bpf_attr, prog_load: prog_type, insn_cnt, insns, license, log_level, log_size,
  // log_buf, kern_version, prog_flags, prog_name[16], prog_ifindex, expected_attach_type.
  const load = new DataView(new ArrayBuffer(128));
  load.setUint32(0, BPF_PROG_TYPE_KPROBE, true);
  load.setUint32(4, RETURN_ZERO.length / 8, true);
  load.setBigUint64(8, BigInt(ptr(RETURN_ZERO)), true);
  load.setBigUint64(16, BigInt(ptr(LICENSE)), true);
  for (let i = 0; i < PROGRAM_NAME.length; i++) load.setUint8(48 + i, PROGRAM_NAME.charCodeAt(i));
  load.setUint32(68, BPF_TRACE_UPROBE_MULTI, true);
  const loadBytes = new Uint8Array(load.buffer);
  // The verifier gives up with EAGAIN on a signal, however small the program.
  const prog = withSignalsBlocked(() => bpfSyscall(BPF_PROG_LOAD, loadBytes));
  if (prog.result < 0) {
    const no = prog.errno === E2BIG || prog.errno === EINVAL;
    return { supported: false, reason: `${feature}: ${no ? "the kernel does not load programs for them" : "cannot load a program to try"} (${strerror(prog.errno)})` };
  }

  try {
    // union bpf_attr, link_create.uprobe_multi: prog_fd, target_fd, attach_type, flags, then
    // path, offsets, ref_ctr_offsets, cookies, cnt, flags, pid.
    const path = Buffer.from("/\0");
    const offsets = new BigUint64Array(1);
    const link = new DataView(new ArrayBuffer(128));
    link.setUint32(0, prog.result, true);
    link.setUint32(8, BPF_TRACE_UPROBE_MULTI, true);
    link.setBigUint64(16, BigInt(ptr(path)), true);
    link.setBigUint64(24, BigInt(ptr(offsets)), true);
    link.setUint32(48, 1, true);
    const r = bpfSyscall(BPF_LINK_CREATE, new Uint8Array(link.buffer));
    keepAlive(path, offsets);
    if (r.result >= 0) {
      libc().close(r.result); // not expected: a link on a directory
      return { supported: true, reason: `${feature}: a link was made` };
    }
    if (r.errno === EBADF) return { supported: true, reason: `${feature}: supported (the kernel looked the path up)` };
    const no = r.errno === EINVAL || r.errno === EOPNOTSUPP;
    return { supported: false, reason: `${feature}: ${no ? "not supported by this kernel" : "cannot try"} (${strerror(r.errno)})` };
  } finally {
    libc().close(prog.result);
  }
}

/** Holds buffers whose raw pointers were passed to the kernel until this call. */
function keepAlive(..._buffers: unknown[]): void {}
