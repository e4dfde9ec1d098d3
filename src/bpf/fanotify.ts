// fanotify and the few descriptor calls the exec holder needs (poll, read, write, pidfd),
// through bun:ffi — src/bpf is where tapwire talks to the kernel. Typed, synchronous, no
// allocation per call beyond what the caller hands in: the holder's loop runs on them.
import { dlopen, FFIType, ptr, read } from "bun:ffi";

const { i32, u32, u64, i64, ptr: P } = FFIType;

const symbols = {
  fanotify_init: { args: [u32, u32], returns: i32 },
  fanotify_mark: { args: [i32, u32, u64, i32, P], returns: i32 },
  poll: { args: [P, u64, i32], returns: i32 },
  read: { args: [i32, P, u64], returns: i64 },
  write: { args: [i32, P, u64], returns: i64 },
  close: { args: [i32], returns: i32 },
  fcntl: { args: [i32, i32, i32], returns: i32 },
  setsid: { args: [], returns: i32 },
  syscall: { args: [i64, i64, i64, i64], returns: i64 },
  __errno_location: { args: [], returns: P },
  strerror: { args: [i32], returns: FFIType.cstring },
} as const;

let lib: ReturnType<typeof dlopen<typeof symbols>>["symbols"] | undefined;
const c = () => (lib ??= dlopen("libc.so.6", symbols).symbols);

export const FAN_CLASS_CONTENT = 0x4;
export const FAN_CLOEXEC = 0x1;
export const FAN_NONBLOCK = 0x2;
export const FAN_OPEN_EXEC_PERM = 0x40000;
export const FAN_MARK_ADD = 0x1;
export const FAN_MARK_IGNORED_MASK = 0x20;
export const FAN_MARK_FILESYSTEM = 0x100;
export const FAN_MARK_EVICTABLE = 0x200;
export const FAN_ALLOW = 0x1;
export const FANOTIFY_METADATA_VERSION = 3;
/** struct fanotify_event_metadata: event_len u32, vers u8, reserved u8, metadata_len u16,
 * mask u64, fd i32, pid i32. */
export const EVENT_METADATA_SIZE = 24;
const O_RDONLY = 0;
const O_LARGEFILE = 0x8000;
const O_CLOEXEC = 0x80000;
const O_NONBLOCK = 0x800;
const F_GETFL = 3;
const F_SETFL = 4;
const AT_FDCWD = -100;
export const POLLIN = 0x1;
export const POLLPRI = 0x2;
const SYS_PIDFD_OPEN = 434;
const SYS_PIDFD_GETFD = 438;

export function errno(): number {
  return read.i32(c().__errno_location()!, 0);
}

export function errnoMessage(err = errno()): string {
  return String(c().strerror(err));
}

/** A fanotify group for permission events; -errno on failure. */
export function fanotifyInit(): number {
  const fd = c().fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC | FAN_NONBLOCK, O_RDONLY | O_LARGEFILE | O_CLOEXEC);
  return fd < 0 ? -errno() : fd;
}

/** fanotify_mark on a path (`path`) or on the object behind a descriptor (`fd`, path null); 0 or -errno. */
export function fanotifyMark(group: number, flags: number, mask: number, target: { path: string } | { fd: number }): number {
  const r =
    "path" in target
      ? c().fanotify_mark(group, flags, mask, AT_FDCWD, ptr(Buffer.from(`${target.path}\0`)))
      : c().fanotify_mark(group, flags, mask, target.fd, null);
  return r < 0 ? -errno() : 0;
}

/** Answers one permission event. */
export function fanotifyRespond(group: number, eventFd: number, response: number, scratch: Int32Array): boolean {
  scratch[0] = eventFd;
  scratch[1] = response;
  return Number(c().write(group, ptr(scratch), 8)) === 8;
}

/** poll(2) over `fds` (struct pollfd: fd i32, events i16, revents i16, as two i32 words per entry
 * in an Int32Array); returns the count ready, 0 on timeout, -errno. */
export function pollFds(fds: Int32Array, count: number, timeoutMs: number): number {
  const r = c().poll(ptr(fds), count, timeoutMs);
  return r < 0 ? -errno() : r;
}

/** read(2) into `buf` from its start; bytes read, 0 at end, -errno. */
export function readFd(fd: number, buf: Uint8Array, length = buf.length): number {
  const n = Number(c().read(fd, ptr(buf), length));
  return n < 0 ? -errno() : n;
}

/** write(2); bytes written or -errno. */
export function writeFd(fd: number, bytes: Uint8Array): number {
  if (!bytes.length) return 0;
  const n = Number(c().write(fd, ptr(bytes), bytes.length));
  return n < 0 ? -errno() : n;
}

export function closeFd(fd: number): void {
  c().close(fd);
}

export function setNonblocking(fd: number): void {
  const flags = c().fcntl(fd, F_GETFL, 0);
  if (flags >= 0) c().fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

/** A session of its own: a Ctrl-Z or Ctrl-C meant for the terminal's job does not reach it. */
export function newSession(): void {
  c().setsid();
}

/** A pidfd of a process (Linux 5.3+); -errno on failure. */
export function pidfdOpen(pid: number): number {
  const r = Number(c().syscall(SYS_PIDFD_OPEN, pid, 0, 0));
  return r < 0 ? -errno() : r;
}

/** A copy, in this process, of another process's descriptor (Linux 5.6+); -errno on failure. */
export function pidfdGetfd(pidfd: number, targetFd: number): number {
  const r = Number(c().syscall(SYS_PIDFD_GETFD, pidfd, targetFd, 0));
  return r < 0 ? -errno() : r;
}
