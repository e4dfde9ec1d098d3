// The connection table: one Connection per kernel connection id, from its CONN_OPEN event
// to its close (or its process's exit). It puts each direction's bytes back in stream order
// from their positions, says where bytes are missing, and hands the ordered stream to a
// StreamSink that the layer above (flows) supplies for each connection.
import { ConnOrigin, type TapwireEvent, type ConnOpenEvent, type DataEvent, type Direction } from "../bpf/events.ts";
import type { ProcessRegistry } from "../procs/process-registry.ts";

/** What the kernel announced of a connection, with its id, its process's exe and when it opened. */
export interface ConnectionInfo
  extends Pick<ConnOpenEvent, "pid" | "fd" | "comm" | "family" | "localIp" | "localPort" | "remoteIp" | "remotePort" | "origin" | "connClass" | "tlsLib" | "cgroupId"> {
  id: number;
  exe: string;
  openedTsNs: number;
}

/** Consumes one connection's bytes, in stream order, per direction. */
export interface StreamSink {
  /** `otherBehind`: bytes the other direction had moved before these that it has not
   * delivered (lost, or on their way), once it has delivered any; 0 otherwise. */
  data(direction: Direction, bytes: Uint8Array, tsNs: number, otherBehind: number): void;
  /** `lost` bytes are missing here: events were lost, or a copy was cut short. */
  gap(direction: Direction, lost: number, tsNs: number): void;
  /** `count` bytes went by whose content cannot be seen (sendfile). */
  unseen(direction: Direction, count: number, tsNs: number): void;
  /** The connection ended (closed, its process exited, or tapwire is stopping). */
  close(tsNs: number): void;
}

export interface ConnectionTableOptions {
  openStream(info: ConnectionInfo): StreamSink | null;
  processes: ProcessRegistry;
  /** Most connections held; the oldest is ended when a new one would exceed it. */
  maxConnections?: number;
  /** A process exited with connections still open: the kernel's entries can go. */
  forget?(pid: number, fd: number): void;
}

export interface ConnectionTableStats {
  connections: number;
  opened: number;
  closed: number;
  evicted: number;
  /** Data events of connections never announced (their CONN_OPEN was lost). */
  orphanEvents: number;
  lostBytes: number;
  reorderedEvents: number;
}

export interface ConnectionTable {
  handle(event: TapwireEvent): void;
  /** End of a batch of events: data held back waiting for earlier bytes is released, with gaps. */
  endBatch(): void;
  /** End every connection (tapwire is stopping). */
  closeAll(tsNs: number): void;
  readonly stats: ConnectionTableStats;
}

/** Events held back (both directions) because an earlier part of the stream had not arrived
 * yet: room for a large write of each direction (a syscall sends up to 256 chunk events). */
const MAX_HELD_EVENTS = 512;

interface DirectionState {
  next: number; // the stream position expected next
  started: boolean; // bytes were delivered
}

interface Connection {
  info: ConnectionInfo;
  sink: StreamSink | null;
  dirs: [DirectionState, DirectionState];
  /** Events held in arrival order, both directions, while one waits for earlier bytes. The
   * other direction waits too: a response must not overtake the request it answers. */
  held: DataEvent[] | null;
}

export function createConnectionTable(opts: ConnectionTableOptions): ConnectionTable {
  const maxConnections = opts.maxConnections ?? 16384;
  const conns = new Map<number, Connection>();
  const byPid = new Map<number, Set<number>>();
  const withHeld = new Set<Connection>();
  const stats: ConnectionTableStats = {
    connections: 0,
    opened: 0,
    closed: 0,
    evicted: 0,
    orphanEvents: 0,
    lostBytes: 0,
    reorderedEvents: 0,
  };

  function open(e: ConnOpenEvent) {
    const existing = conns.get(e.connId);
    if (existing) end(existing, e.tsNs);
    if (conns.size >= maxConnections) {
      const oldest = conns.values().next().value!;
      stats.evicted++;
      end(oldest, e.tsNs);
    }
    const info: ConnectionInfo = {
      id: e.connId,
      pid: e.pid,
      fd: e.fd,
      comm: e.comm,
      exe: opts.processes.exe(e.pid),
      family: e.family,
      localIp: e.localIp,
      localPort: e.localPort,
      remoteIp: e.remoteIp,
      remotePort: e.remotePort,
      origin: e.origin,
      connClass: e.connClass,
      tlsLib: e.tlsLib,
      cgroupId: e.cgroupId,
      openedTsNs: e.tsNs,
    };
    const conn: Connection = {
      info,
      sink: opts.openStream(info),
      dirs: [
        { next: 0, started: false },
        { next: 0, started: false },
      ],
      held: null,
    };
    conns.set(e.connId, conn);
    let set = byPid.get(e.pid);
    if (!set) byPid.set(e.pid, (set = new Set()));
    set.add(e.connId);
    stats.opened++;
    stats.connections = conns.size;
  }

  function deliver(conn: Connection, e: DataEvent) {
    const d = conn.dirs[e.direction];
    const sink = conn.sink;
    let data = e.data;
    let pos = e.pos;
    if (pos > d.next) {
      const lost = pos - d.next;
      stats.lostBytes += lost;
      sink?.gap(e.direction, lost, e.tsNs);
    } else if (pos < d.next) {
      // Overlaps what was delivered already: keep only the new part.
      const overlap = d.next - pos;
      if (overlap >= data.length + e.skipped) return;
      if (overlap >= data.length) {
        data = data.subarray(data.length);
      } else {
        data = data.subarray(overlap);
      }
      pos = d.next;
    }
    if (data.length) {
      const other = conn.dirs[e.direction ^ 1];
      // Known from the connection's start, or once the other direction has been read from.
      const counted = other.started || conn.info.origin !== ConnOrigin.Found;
      const behind = counted && e.peerPos > other.next ? e.peerPos - other.next : 0;
      d.started = true;
      sink?.data(e.direction, data, e.tsNs, behind);
    }
    if (e.skipped) sink?.unseen(e.direction, e.skipped, e.tsNs);
    d.next = e.pos + e.data.length + e.skipped;
  }

  /**
   * Delivers held events in arrival order as far as their positions allow. An event waiting
   * for earlier bytes may be overtaken only by those bytes (a later event of its direction
   * at the expected position: concurrent writers reserve ring space out of order). `all`:
   * the batch ended — what is still missing is lost, and each direction goes on from its
   * lowest position held.
   */
  function releaseHeld(conn: Connection, all: boolean) {
    const held = conn.held!;
    while (held.length) {
      const e = held[0]!;
      const d = conn.dirs[e.direction];
      if (e.pos <= d.next) {
        deliver(conn, held.shift()!);
        continue;
      }
      let lowest = 0;
      for (let j = 1; j < held.length; j++) {
        const x = held[j]!;
        if (x.direction === e.direction && x.pos < held[lowest]!.pos) lowest = j;
      }
      if (lowest === 0 && !all) break;
      if (!all && held[lowest]!.pos > d.next) break;
      deliver(conn, held.splice(lowest, 1)[0]!);
    }
    if (!held.length) {
      conn.held = null;
      withHeld.delete(conn);
    }
  }

  function data(e: DataEvent) {
    const conn = conns.get(e.connId);
    if (!conn) {
      stats.orphanEvents++;
      return;
    }
    const d = conn.dirs[e.direction];
    if (conn.held) {
      conn.held.push(e);
      // Only bytes its direction is waiting for can release anything.
      if (e.pos <= d.next) releaseHeld(conn, false);
      else if (conn.held.length > MAX_HELD_EVENTS) releaseHeld(conn, true);
      return;
    }
    if (e.pos > d.next) {
      // Maybe a concurrent writer's bytes that will arrive a little later: hold this one
      // (and what follows on the connection) until the end of the batch before calling the
      // difference lost.
      stats.reorderedEvents++;
      conn.held = [e];
      withHeld.add(conn);
      return;
    }
    deliver(conn, e);
  }

  function flushHeld(conn: Connection) {
    if (conn.held) releaseHeld(conn, true);
  }

  function end(conn: Connection, tsNs: number, finalPositions?: [number, number]) {
    flushHeld(conn);
    if (finalPositions) {
      for (const dir of [0, 1] as Direction[]) {
        const missing = finalPositions[dir] - conn.dirs[dir].next;
        if (missing > 0) {
          stats.lostBytes += missing;
          conn.sink?.gap(dir, missing, tsNs);
        }
      }
    }
    conn.sink?.close(tsNs);
    conns.delete(conn.info.id);
    const set = byPid.get(conn.info.pid);
    set?.delete(conn.info.id);
    if (set && !set.size) byPid.delete(conn.info.pid);
    stats.closed++;
    stats.connections = conns.size;
  }

  return {
    handle(e) {
      switch (e.kind) {
        case "data":
          data(e);
          break;
        case "conn-open":
          open(e);
          break;
        case "conn-close": {
          const conn = conns.get(e.connId);
          if (conn) end(conn, e.tsNs, [e.egressBytes, e.ingressBytes]);
          break;
        }
        case "proc-exec":
          opts.processes.exec(e.pid, e.filename);
          break;
        case "proc-exit": {
          const ids = byPid.get(e.pid);
          if (ids) {
            for (const id of [...ids]) {
              const conn = conns.get(id)!;
              end(conn, e.tsNs);
              opts.forget?.(conn.info.pid, conn.info.fd);
            }
          }
          opts.processes.exit(e.pid);
          break;
        }
      }
    },
    endBatch() {
      for (const conn of withHeld) flushHeld(conn); // (each is deleted as it empties: allowed while iterating)
    },
    closeAll(tsNs) {
      for (const conn of [...conns.values()]) end(conn, tsNs);
    },
    stats,
  };
}
