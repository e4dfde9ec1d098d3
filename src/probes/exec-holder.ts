// The exec holder: a small process of its own (`tapwire __exec-holder`, started by
// src/probes/exec-hold.ts) that owns tapwire's fanotify group. The kernel makes every exec
// of a file on a marked filesystem wait until the group answers; the holder tells tapwire of
// each one and answers when tapwire has probed the file — or at the deadline, whatever
// tapwire is doing. It is a process, not a thread, so that nothing in tapwire can keep it
// from answering: not a busy or stopped event loop, not a GC pause, not tapwire being
// SIGSTOPped (it has its own session: a Ctrl-Z meant for tapwire does not stop it). When
// tapwire dies its pipe ends and the holder lets everything go and exits; when the holder
// dies the kernel lets every waiting exec go (a permission event's group is gone).
//
// The loop is synchronous (poll, read, answer): it never returns to an event loop.
//
// Lines to tapwire (stdout):   R marked=N skipped=... | E id pid fd ino | T id | W text
// Lines from tapwire (stdin):  A id k (allow; the file is known: ignore it from now on)
//                              A id r (allow; the file may be tried again) | I path (ignore it)
import { parentPid, procPath, rootPath } from "../procs/proc.ts";
import { fstatSync, openSync, readFileSync, statSync } from "node:fs";
import {
  EVENT_METADATA_SIZE,
  FAN_ALLOW,
  FAN_MARK_ADD,
  FAN_MARK_EVICTABLE,
  FAN_MARK_FILESYSTEM,
  FAN_MARK_IGNORED_MASK,
  FAN_OPEN_EXEC_PERM,
  FANOTIFY_METADATA_VERSION,
  POLLIN,
  POLLPRI,
  closeFd,
  errnoMessage,
  fanotifyInit,
  fanotifyMark,
  fanotifyRespond,
  newSession,
  pollFds,
  readFd,
  setNonblocking,
  writeFd,
} from "../bpf/fanotify.ts";

/** Filesystems nothing is executed from. */
const PSEUDO_FS = new Set([
  "proc", "sysfs", "cgroup", "cgroup2", "devpts", "mqueue", "tracefs", "debugfs", "securityfs", "bpf", "pstore",
  "configfs", "fusectl", "hugetlbfs", "binfmt_misc", "autofs", "nsfs", "rpc_pipefs", "efivarfs", "selinuxfs", "devtmpfs",
]);
/** Events waiting for an answer, at most; past it the oldest is let go at once. */
const MAX_PENDING = 4096;

interface Pending {
  fd: number;
  deadline: number;
}

export interface HolderOptions {
  deadlineMs: number;
  /** tapwire's pid: its own execs (it makes none) and its children's are never held. */
  parentPid: number;
}

/** Where the host's mounts are seen from: pid 1's view, through its root, when tapwire runs
 * in a mount namespace of its own (a container with --pid=host); else tapwire's own. */
function mountView(): { table: string; prefix: string } {
  try {
    if (statSync(procPath(1, "ns/mnt")).ino !== statSync(procPath("self", "ns/mnt")).ino) {
      statSync(rootPath(1, "/"));
      return { table: procPath(1, "mountinfo"), prefix: rootPath(1) };
    }
  } catch {
    // pid 1's root is not ours to see: our own view is all there is.
  }
  return { table: procPath("self", "mountinfo"), prefix: "" };
}

/** The mounts: [path to mark, fs type, device]. */
function filesystems(view: { table: string; prefix: string }): { path: string; type: string; dev: string }[] {
  const out: { path: string; type: string; dev: string }[] = [];
  for (const line of readFileSync(view.table, "utf8").split("\n")) {
    const [left, right] = line.split(" - ");
    if (!left || !right) continue;
    const f = left.split(" ");
    const type = right.split(" ")[0]!;
    const mountPoint = f[4]!.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)));
    out.push({ path: view.prefix + mountPoint, type, dev: f[2]! });
  }
  return out;
}

export function runExecHolder(opts: HolderOptions): number {
  newSession();
  const out = (line: string) => void writeFd(1, Buffer.from(line + "\n"));
  const group = fanotifyInit();
  if (group < 0) {
    out(`X fanotify_init: ${errnoMessage(-group)}`);
    return 3;
  }

  // One filesystem mark per filesystem, found again whenever the mount table changes.
  const marked = new Set<string>();
  const view = mountView();
  const markNew = (report: (line: string) => void) => {
    const skipped: string[] = [];
    for (const fs of filesystems(view)) {
      if (PSEUDO_FS.has(fs.type) || marked.has(fs.dev)) continue;
      const r = fanotifyMark(group, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, FAN_OPEN_EXEC_PERM, { path: fs.path });
      if (r === 0) marked.add(fs.dev);
      else {
        marked.add(fs.dev); // said once
        skipped.push(`${fs.path.slice(view.prefix.length) || "/"} (${fs.type}: ${errnoMessage(-r)})`);
      }
    }
    if (skipped.length) report(skipped.join(", "));
    return skipped;
  };
  const skipped = markNew(() => {});
  // The mount table's descriptor polls ready (POLLPRI) when a filesystem is mounted.
  let mountinfo = -1;
  try {
    mountinfo = openSync(view.table, "r");
  } catch {}

  setNonblocking(0);
  setNonblocking(1);
  out(`R marked=${marked.size - skipped.length} skipped=${skipped.join("; ")}`);

  const pending = new Map<number, Pending>();
  let nextId = 1;
  const eventBuf = new Uint8Array(64 * 1024);
  const ev = new DataView(eventBuf.buffer);
  const inBuf = new Uint8Array(64 * 1024);
  let inText = "";
  const respond = new Int32Array(2);
  const fds = new Int32Array(6);
  const self = process.pid;

  const allow = (id: number, ignore: boolean) => {
    const p = pending.get(id);
    if (!p) return;
    pending.delete(id);
    if (ignore) fanotifyMark(group, FAN_MARK_ADD | FAN_MARK_IGNORED_MASK | FAN_MARK_EVICTABLE, FAN_OPEN_EXEC_PERM, { fd: p.fd });
    fanotifyRespond(group, p.fd, FAN_ALLOW, respond);
    closeFd(p.fd);
  };
  const allowAll = () => {
    for (const id of [...pending.keys()]) allow(id, false);
  };

  for (;;) {
    // The nearest deadline decides how long to wait.
    const now = performance.now();
    let wait = -1;
    for (const [id, p] of pending) {
      if (p.deadline <= now) {
        allow(id, false);
        out(`T ${id}`);
      } else if (wait < 0 || p.deadline - now < wait) wait = Math.ceil(p.deadline - now);
    }
    // struct pollfd: fd, then events (low half) and revents (high half) in one 32-bit word.
    fds[0] = group;
    fds[1] = POLLIN;
    fds[2] = 0;
    fds[3] = POLLIN;
    fds[4] = mountinfo;
    fds[5] = POLLPRI;
    const ready = pollFds(fds, mountinfo >= 0 ? 3 : 2, wait);
    if (ready < 0) continue; // EINTR
    const revents = (i: number) => fds[i * 2 + 1]! >>> 16;

    if (revents(0) & POLLIN) {
      for (;;) {
        const n = readFd(group, eventBuf);
        if (n <= 0) break;
        for (let at = 0; at + EVENT_METADATA_SIZE <= n; ) {
          const len = ev.getUint32(at, true);
          if (len < EVENT_METADATA_SIZE || ev.getUint8(at + 4) !== FANOTIFY_METADATA_VERSION) break;
          const fd = ev.getInt32(at + 16, true);
          const pid = ev.getInt32(at + 20, true);
          at += len;
          if (fd < 0) continue; // a queue overflow notice: nothing waits for it
          const id = nextId++;
          pending.set(id, { fd, deadline: performance.now() + opts.deadlineMs });
          if (pending.size > MAX_PENDING) allow(pending.keys().next().value!, false);
          if (pid === self || pid === opts.parentPid || parentPid(pid) === opts.parentPid) {
            allow(id, false);
            continue;
          }
          let ino = 0;
          try {
            ino = fstatSync(fd).ino;
          } catch {}
          out(`E ${id} ${pid} ${fd} ${ino}`);
        }
      }
    }

    if (revents(1) & (POLLIN | 0x10 /* POLLHUP */ | 0x8 /* POLLERR */)) {
      const n = readFd(0, inBuf);
      if (n === 0 || (n < 0 && revents(1) & 0x10)) {
        // tapwire is gone: let everything go.
        allowAll();
        closeFd(group);
        return 0;
      }
      if (n > 0) {
        inText += Buffer.from(inBuf.subarray(0, n)).toString("latin1");
        let nl;
        while ((nl = inText.indexOf("\n")) >= 0) {
          const line = inText.slice(0, nl);
          inText = inText.slice(nl + 1);
          if (line.startsWith("A ")) {
            const [, id, kind] = line.split(" ");
            allow(Number(id), kind === "k");
          } else if (line.startsWith("I ")) {
            fanotifyMark(group, FAN_MARK_ADD | FAN_MARK_IGNORED_MASK | FAN_MARK_EVICTABLE, FAN_OPEN_EXEC_PERM, { path: line.slice(2) });
          }
        }
      }
    }

    // poll itself re-arms the change notice.
    if (mountinfo >= 0 && revents(2) & POLLPRI) {
      try {
        markNew((line) => out(`W not held on ${line}`));
      } catch {}
    }
  }
}
