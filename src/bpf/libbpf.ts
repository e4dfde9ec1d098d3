// The bun:ffi binding of libbpf and the few libc calls the loader needs. This file and its
// neighbours in src/bpf are the only importers of bun:ffi; everything above sees typed values.
import { dlopen, FFIType, JSCallback, CString, ptr, read, type Pointer } from "bun:ffi";

const { i32, u32, u64, ptr: P, cstring, void: VOID, i64 } = FFIType;
const usize = FFIType.u64; // size_t on the 64-bit targets tapwire supports

/** libbpf sonames tried in order: the system's libbpf1 first. */
export const LIBBPF_SONAMES = ["libbpf.so.1", "libbpf.so", "libbpf.so.0"];

const libbpfSymbols = {
  libbpf_num_possible_cpus: { args: [], returns: i32 },
  libbpf_set_print: { args: [P], returns: P },
  libbpf_get_error: { args: [P], returns: i64 },
  libbpf_strerror: { args: [i32, P, usize], returns: i32 },
  libbpf_major_version: { args: [], returns: u32 },
  libbpf_minor_version: { args: [], returns: u32 },
  bpf_object__open_mem: { args: [P, usize, P], returns: P },
  bpf_object__load: { args: [P], returns: i32 },
  bpf_object__close: { args: [P], returns: VOID },
  bpf_object__find_map_by_name: { args: [P, cstring], returns: P },
  bpf_object__next_program: { args: [P, P], returns: P },
  bpf_program__name: { args: [P], returns: cstring },
  bpf_program__section_name: { args: [P], returns: cstring },
  bpf_program__attach: { args: [P], returns: P },
  bpf_program__fd: { args: [P], returns: i32 },
  bpf_program__set_expected_attach_type: { args: [P, u32], returns: i32 },
  bpf_program__attach_uprobe_opts: { args: [P, i32, cstring, usize, P], returns: P },
  bpf_program__set_autoload: { args: [P, FFIType.bool], returns: i32 },
  bpf_link__destroy: { args: [P], returns: i32 },
  bpf_map__set_max_entries: { args: [P, u32], returns: i32 },
  bpf_map__fd: { args: [P], returns: i32 },
  bpf_map__initial_value: { args: [P, P], returns: P },
  bpf_map_update_elem: { args: [i32, P, P, u64], returns: i32 },
  bpf_map_lookup_elem: { args: [i32, P, P], returns: i32 },
  bpf_map_delete_elem: { args: [i32, P], returns: i32 },
  bpf_map_get_next_key: { args: [i32, P, P], returns: i32 },
  libbpf_probe_bpf_map_type: { args: [i32, P], returns: i32 },
} as const;

const libcSymbols = {
  __errno_location: { args: [], returns: P },
  geteuid: { args: [], returns: u32 },
  vsnprintf: { args: [P, usize, P, P], returns: i32 },
  mmap: { args: [P, usize, i32, i32, i32, i64], returns: P },
  munmap: { args: [P, usize], returns: i32 },
  mount: { args: [cstring, cstring, cstring, u64, P], returns: i32 },
  clock_gettime: { args: [i32, P], returns: i32 },
  getpagesize: { args: [], returns: i32 },
  strerror: { args: [i32], returns: cstring },
  pthread_sigmask: { args: [i32, P, P], returns: i32 },
  syscall: { args: [i64, i64, P, i64], returns: i64 },
  close: { args: [i32], returns: i32 },
} as const;

const SIG_BLOCK = 0;
const SIG_SETMASK = 2;

/**
 * Run `fn` with every blockable signal held back on this thread. The verifier gives up with
 * EAGAIN when a signal arrives while it works (a profiler's sampling signals, a Ctrl-C):
 * held, the signal is delivered as soon as `fn` returns instead.
 */
export function withSignalsBlocked<T>(fn: () => T): T {
  const all = new Uint8Array(128).fill(0xff);
  const previous = new Uint8Array(128);
  libc().pthread_sigmask(SIG_BLOCK, ptr(all), ptr(previous));
  try {
    return fn();
  } finally {
    libc().pthread_sigmask(SIG_SETMASK, ptr(previous), null);
  }
}

/** A failure the user can act on: one line, shown as is, exit code 2. */
export class SetupError extends Error {
  constructor(message: string, readonly hint = "") {
    super(message);
    this.name = "SetupError";
  }
}

type LibbpfLib = ReturnType<typeof dlopen<typeof libbpfSymbols>>;
type LibcLib = ReturnType<typeof dlopen<typeof libcSymbols>>;

let libbpfLib: LibbpfLib | undefined;
let libbpfSoname = "";
let libcLib: LibcLib | undefined;

/** libbpf's functions, loaded on first use from the first soname that opens. */
export function libbpf(): LibbpfLib["symbols"] {
  if (libbpfLib) return libbpfLib.symbols;
  const tried: string[] = [];
  for (const name of LIBBPF_SONAMES) {
    try {
      libbpfLib = dlopen(name, libbpfSymbols);
      libbpfSoname = name;
      installPrintHandler(libbpfLib.symbols);
      return libbpfLib.symbols;
    } catch (e) {
      tried.push(name);
    }
  }
  throw new SetupError(
    `libbpf not found (tried ${tried.join(", ")})`,
    "install it: apt-get install libbpf1 (Debian/Ubuntu) or dnf install libbpf (Fedora)",
  );
}

export function libbpfInfo(): { soname: string; version: string } {
  const l = libbpf();
  return { soname: libbpfSoname, version: `${l.libbpf_major_version()}.${l.libbpf_minor_version()}` };
}

export function libc(): LibcLib["symbols"] {
  if (!libcLib) libcLib = dlopen("libc.so.6", libcSymbols);
  return libcLib.symbols;
}

export function errno(): number {
  return read.i32(libc().__errno_location()!, 0);
}

/** The bpf syscall's number on x86-64, the one architecture tapwire makes it directly on. */
const SYS_BPF = 321;

/** Commands and attach types of the bpf syscall that tapwire makes itself (linux/bpf.h). */
export const BPF_PROG_LOAD = 5;
export const BPF_LINK_CREATE = 28;
export const BPF_TRACE_UPROBE_MULTI = 48;

/**
 * The bpf syscall with `attr` (union bpf_attr, zero-filled past what the command uses): its
 * result and, when negative, the errno. Only on x86-64 (see SYS_BPF).
 */
export function bpfSyscall(cmd: number, attr: Uint8Array): { result: number; errno: number } {
  if (process.arch !== "x64") throw new SetupError(`the bpf syscall is made directly only on x86-64, not ${process.arch}`);
  const result = Number(libc().syscall(SYS_BPF, cmd, ptr(attr), attr.length));
  return { result, errno: result < 0 ? errno() : 0 };
}

export function strerror(err: number): string {
  return String(libc().strerror(Math.abs(err)));
}

// libbpf's own messages: kept (the last few) so a failed load can say why, and shown
// on stderr in debug mode.
const recentLibbpfMessages: string[] = [];
let debugMessages = false;

/** Show libbpf's warnings and info on stderr as they come. */
export function setLibbpfDebug(on: boolean): void {
  debugMessages = on;
}
let printCallback: JSCallback | undefined;
const printBuffer = new Uint8Array(4096);

function installPrintHandler(l: LibbpfLib["symbols"]) {
  printCallback = new JSCallback(
    (level: number, fmt: Pointer, args: Pointer) => {
      const n = libc().vsnprintf(ptr(printBuffer), printBuffer.length, fmt, args);
      const text = new TextDecoder().decode(printBuffer.subarray(0, Math.max(0, Math.min(n, printBuffer.length - 1))));
      for (const line of text.split("\n")) {
        if (!line) continue;
        recentLibbpfMessages.push(line);
        if (recentLibbpfMessages.length > 400) recentLibbpfMessages.shift();
      }
      if (debugMessages && level <= 1) process.stderr.write(`libbpf: ${text}`);
      return 0;
    },
    { args: [i32, P, P], returns: i32 },
  );
  l.libbpf_set_print(printCallback.ptr);
}

/** libbpf messages since the last call (and clears them). */
export function takeLibbpfMessages(): string[] {
  return recentLibbpfMessages.splice(0, recentLibbpfMessages.length);
}

export function cstr(p: Pointer | null): string {
  return p ? new CString(p).toString() : "";
}
