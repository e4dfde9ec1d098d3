// Decoding of ring buffer records into typed events. Input is a view of the record's bytes
// (ring memory, or a recording); the only copy made is of a data event's payload, which
// the event then owns.
import * as L from "./gen/layout.ts";

// Twins of enum tw_direction, tw_origin and tw_class in bpf/tapwire.h, written out as const
// enums so per-event code compares with literals; test/unit/bpf/header-enums.test.ts holds
// every member equal to the header's value (src/bpf/gen/layout.ts) and every value twinned.
export const enum Direction {
  Egress = 0, // the traced process sent the bytes
  Ingress = 1, // the traced process received them
}

export const enum ConnOrigin {
  Found = 0,
  Accept = 1,
  Connect = 2,
  /** Its SSL object was made while traced, its socket not seen: whole stream, side unknown. */
  SslNew = 3,
}

export const enum ConnClass {
  Unknown = 0,
  Http1 = 1,
  Http2 = 2,
  Tls = 3,
  Other = 4,
  Ignored = 5,
  /** WebSocket frames: a connection joined after its upgrade. */
  Websocket = 6,
  /** A Redis command (RESP). */
  Redis = 7,
}

export interface ConnOpenEvent {
  kind: "conn-open";
  pid: number;
  tid: number;
  tsNs: number;
  connId: number;
  /** -1 when the socket is not known (an SSL connection whose socket I/O happens elsewhere). */
  fd: number;
  /** 0: the socket is not known, and neither are the endpoints (ips "", ports 0). */
  family: 4 | 6 | 0;
  localIp: string;
  localPort: number;
  remoteIp: string;
  remotePort: number;
  origin: ConnOrigin;
  connClass: ConnClass;
  comm: string;
  /** The id of the TLS library whose plaintext this connection carries; 0 for plaintext. */
  tlsLib: number;
  /** The process's cgroup v2 id (a directory's inode): which container it is in. */
  cgroupId: number;
}

export interface DataEvent {
  kind: "data";
  pid: number;
  tid: number;
  tsNs: number;
  connId: number;
  direction: Direction;
  /** Stream position of data[0] in this direction. */
  pos: number;
  /** The other direction's stream position when the event was made: the bytes it had moved. */
  peerPos: number;
  /** Owned by the event (copied out of the ring). */
  data: Uint8Array;
  /** Bytes at pos + data.length that were moved but not copied (sendfile). */
  skipped: number;
  flags: number;
}

export interface ConnCloseEvent {
  kind: "conn-close";
  pid: number;
  tid: number;
  tsNs: number;
  connId: number;
  egressBytes: number;
  ingressBytes: number;
}

export interface ProcExecEvent {
  kind: "proc-exec";
  pid: number;
  tid: number;
  tsNs: number;
  ppid: number;
  /** The process's cgroup v2 id. */
  cgroupId: number;
  comm: string;
  filename: string;
}

export interface ProcExitEvent {
  kind: "proc-exit";
  pid: number;
  tid: number;
  tsNs: number;
  comm: string;
}

/** A process opened a file named libssl.so*: a TLS library that may need probes. */
export interface LibOpenEvent {
  kind: "lib-open";
  pid: number;
  tid: number;
  tsNs: number;
  /** What openat returned. */
  fd: number;
  /** As the process passed it to openat (relative to its root and cwd). */
  path: string;
}

/** A TLS secret a Go program derived (crypto/tls.(*Config).writeKeyLog). */
export interface TlsSecretEvent {
  kind: "tls-secret";
  pid: number;
  tid: number;
  tsNs: number;
  /** "CLIENT_RANDOM", "CLIENT_TRAFFIC_SECRET_0"...; "" when it could not be read. */
  label: string;
  /** Lowercase hex; "" when unreadable or longer than the event holds (never cut). */
  clientRandom: string;
  secret: string;
}

export type TapwireEvent = ConnOpenEvent | DataEvent | ConnCloseEvent | ProcExecEvent | ProcExitEvent | LibOpenEvent | TlsSecretEvent;

export class DecodeError extends Error {}

const latin1 = new TextDecoder("latin1");
const utf8 = new TextDecoder("utf-8");

function u64(dv: DataView, off: number): number {
  // Positions and ids stay far below 2^53; timestamps lose nothing that matters.
  return dv.getUint32(off, true) + dv.getUint32(off + 4, true) * 0x1_0000_0000;
}

function cString(bytes: Uint8Array, off: number, max: number, decoder: TextDecoder): string {
  let end = bytes.indexOf(0, off);
  if (end < 0 || end > off + max) end = off + max;
  return decoder.decode(bytes.subarray(off, end));
}

export function formatIp(bytes: Uint8Array, off: number, family: 4 | 6): string {
  if (family === 4) return `${bytes[off]}.${bytes[off + 1]}.${bytes[off + 2]}.${bytes[off + 3]}`;
  // v4-mapped (::ffff:a.b.c.d) is shown as the IPv4 address it is.
  let mapped = bytes[off + 10] === 0xff && bytes[off + 11] === 0xff;
  for (let i = 0; i < 10 && mapped; i++) if (bytes[off + i] !== 0) mapped = false;
  if (mapped) return formatIp(bytes, off + 12, 4);
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[off + i] << 8) | bytes[off + i + 1]);
  // RFC 5952: the longest run (2+) of zero groups becomes "::".
  let bestStart = -1, bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLen).join(":")}`;
}

/**
 * Decode the record at bytes[off .. off+len). `dv` must view the same memory as `bytes`
 * (passed in so the caller makes it once, not once per record).
 */
export function decodeEvent(bytes: Uint8Array, dv: DataView, off: number, len: number): TapwireEvent {
  if (len < L.tw_event_header.size) throw new DecodeError(`record of ${len} bytes is shorter than its header`);
  const kind = dv.getUint32(off + L.tw_event_header.kind, true);
  const pid = dv.getUint32(off + L.tw_event_header.pid, true);
  const tid = dv.getUint32(off + L.tw_event_header.tid, true);
  const tsNs = u64(dv, off + L.tw_event_header.ts_ns);
  switch (kind) {
    case L.TW_EVENT_DATA: {
      const D = L.tw_data_event;
      if (len < D.size) break;
      const n = dv.getUint32(off + D.len, true);
      if (D.size + n > len) throw new DecodeError(`data event says ${n} payload bytes but the record holds ${len - D.size}`);
      return {
        kind: "data",
        pid,
        tid,
        tsNs,
        connId: u64(dv, off + D.conn_id),
        direction: bytes[off + D.direction] as Direction,
        pos: u64(dv, off + D.pos),
        peerPos: u64(dv, off + D.peer_pos),
        data: bytes.slice(off + D.size, off + D.size + n),
        skipped: dv.getUint32(off + D.skipped, true),
        flags: bytes[off + D.flags],
      };
    }
    case L.TW_EVENT_CONN_OPEN: {
      const C = L.tw_conn_open_event;
      if (len < C.size) break;
      const af = dv.getUint16(off + C.family, true);
      const family = af === 10 ? 6 : af === 2 ? 4 : 0;
      return {
        kind: "conn-open",
        pid,
        tid,
        tsNs,
        connId: u64(dv, off + C.conn_id),
        fd: dv.getInt32(off + C.fd, true),
        family,
        localIp: family ? formatIp(bytes, off + C.local_addr, family) : "",
        localPort: dv.getUint16(off + C.local_port, true),
        remoteIp: family ? formatIp(bytes, off + C.remote_addr, family) : "",
        remotePort: dv.getUint16(off + C.remote_port, true),
        origin: bytes[off + C.origin] as ConnOrigin,
        connClass: bytes[off + C.class] as ConnClass,
        comm: cString(bytes, off + C.comm, L.TW_COMM_LEN, latin1),
        tlsLib: dv.getUint32(off + C.tls_lib, true),
        cgroupId: u64(dv, off + C.cgroup_id),
      };
    }
    case L.TW_EVENT_CONN_CLOSE: {
      const C = L.tw_conn_close_event;
      if (len < C.size) break;
      return {
        kind: "conn-close",
        pid,
        tid,
        tsNs,
        connId: u64(dv, off + C.conn_id),
        egressBytes: u64(dv, off + C.egress_bytes),
        ingressBytes: u64(dv, off + C.ingress_bytes),
      };
    }
    case L.TW_EVENT_PROC_EXEC: {
      const E = L.tw_proc_exec_event;
      if (len < E.size) break;
      return {
        kind: "proc-exec",
        pid,
        tid,
        tsNs,
        ppid: dv.getUint32(off + E.ppid, true),
        cgroupId: u64(dv, off + E.cgroup_id),
        comm: cString(bytes, off + E.comm, L.TW_COMM_LEN, latin1),
        filename: cString(bytes, off + E.filename, L.TW_PATH_LEN, utf8),
      };
    }
    case L.TW_EVENT_PROC_EXIT: {
      const E = L.tw_proc_exit_event;
      if (len < E.size) break;
      return { kind: "proc-exit", pid, tid, tsNs, comm: cString(bytes, off + E.comm, L.TW_COMM_LEN, latin1) };
    }
    case L.TW_EVENT_LIB_OPEN: {
      const E = L.tw_lib_open_event;
      if (len < E.size) break;
      return { kind: "lib-open", pid, tid, tsNs, fd: dv.getInt32(off + E.fd, true), path: cString(bytes, off + E.path, L.TW_PATH_LEN, utf8) };
    }
    case L.TW_EVENT_TLS_SECRET: {
      const E = L.tw_tls_secret_event;
      if (len < E.size) break;
      // A field longer than the event holds is left out rather than cut: a cut secret is wrong.
      const field = (at: number, n: number, cap: number) => (n > 0 && n <= cap ? Buffer.from(bytes.buffer, bytes.byteOffset + off + at, n) : undefined);
      const label = field(E.label, dv.getUint32(off + E.label_len, true), L.TW_SECRET_LABEL_LEN);
      return {
        kind: "tls-secret",
        pid,
        tid,
        tsNs,
        label: label ? label.toString("latin1") : "",
        clientRandom: field(E.client_random, dv.getUint32(off + E.random_len, true), L.TW_SECRET_RANDOM_LEN)?.toString("hex") ?? "",
        secret: field(E.secret, dv.getUint32(off + E.secret_len, true), L.TW_SECRET_LEN)?.toString("hex") ?? "",
      };
    }
    default:
      throw new DecodeError(`unknown record kind ${kind}`);
  }
  throw new DecodeError(`record of kind ${kind} is too short (${len} bytes)`);
}
