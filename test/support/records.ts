// Synthetic ring buffer records in the kernel side's exact binary layout (from the generated
// twin of bpf/tapwire.h), for tests of the user-side pipeline and for the replay benchmark.
import * as L from "../../src/bpf/gen/layout.ts";

export interface ConnSpec {
  connId: number;
  pid: number;
  fd?: number;
  comm?: string;
  origin?: number; // 0 found, 1 accept, 2 connect
  connClass?: number; // 1 http1
  local?: [string, number];
  remote?: [string, number];
  /** The TLS library id (0: plaintext). */
  tlsLib?: number;
  /** No socket: family 0, no addresses or ports. */
  unknownSocket?: boolean;
  /** The process's cgroup v2 id. */
  cgroupId?: number;
}

function ipBytes(ip: string): { family: number; bytes: Uint8Array } {
  const out = new Uint8Array(16);
  if (ip.includes(":")) {
    const [head, tail] = ip.split("::");
    const h = head ? head.split(":") : [];
    const t = tail !== undefined ? (tail ? tail.split(":") : []) : [];
    const groups = tail !== undefined ? [...h, ...Array(8 - h.length - t.length).fill("0"), ...t] : h;
    groups.forEach((g, i) => {
      const v = parseInt(g, 16);
      out[i * 2] = v >> 8;
      out[i * 2 + 1] = v & 0xff;
    });
    return { family: 10, bytes: out };
  }
  ip.split(".").forEach((p, i) => (out[i] = Number(p)));
  return { family: 2, bytes: out };
}

function header(dv: DataView, kind: number, pid: number, tsNs: number) {
  dv.setUint32(L.tw_event_header.kind, kind, true);
  dv.setUint32(L.tw_event_header.pid, pid, true);
  dv.setUint32(L.tw_event_header.tid, pid, true);
  dv.setBigUint64(L.tw_event_header.ts_ns, BigInt(tsNs), true);
}

export function connOpenRecord(c: ConnSpec, tsNs: number): Uint8Array {
  const buf = new Uint8Array(L.tw_conn_open_event.size);
  const dv = new DataView(buf.buffer);
  header(dv, L.TW_EVENT_CONN_OPEN, c.pid, tsNs);
  const C = L.tw_conn_open_event;
  const local = ipBytes((c.local ?? ["127.0.0.1", 40000])[0]);
  const remote = ipBytes((c.remote ?? ["127.0.0.1", 8080])[0]);
  dv.setBigUint64(C.conn_id, BigInt(c.connId), true);
  if (!c.unknownSocket) {
    dv.setUint16(C.family, local.family, true);
    dv.setUint16(C.local_port, (c.local ?? ["", 40000])[1], true);
    dv.setUint16(C.remote_port, (c.remote ?? ["", 8080])[1], true);
    buf.set(local.bytes, C.local_addr);
    buf.set(remote.bytes, C.remote_addr);
  }
  buf[C.origin] = c.origin ?? 2;
  buf[C.class] = c.connClass ?? 1;
  buf.set(new TextEncoder().encode((c.comm ?? "client").slice(0, 15)), C.comm);
  dv.setInt32(C.fd, c.fd ?? 3, true);
  dv.setUint32(C.tls_lib, c.tlsLib ?? 0, true);
  dv.setBigUint64(C.cgroup_id, BigInt(c.cgroupId ?? 0), true);
  return buf;
}

export function dataRecord(connId: number, pid: number, direction: 0 | 1, pos: number, data: Uint8Array, tsNs: number, skipped = 0, peerPos = 0): Uint8Array {
  const D = L.tw_data_event;
  const buf = new Uint8Array(D.size + data.length);
  const dv = new DataView(buf.buffer);
  header(dv, L.TW_EVENT_DATA, pid, tsNs);
  dv.setBigUint64(D.conn_id, BigInt(connId), true);
  dv.setBigUint64(D.pos, BigInt(pos), true);
  dv.setBigUint64(D.peer_pos, BigInt(peerPos), true);
  dv.setUint32(D.len, data.length, true);
  dv.setUint32(D.skipped, skipped, true);
  buf[D.direction] = direction;
  buf.set(data, D.size);
  return buf;
}

export function connCloseRecord(connId: number, pid: number, egress: number, ingress: number, tsNs: number): Uint8Array {
  const C = L.tw_conn_close_event;
  const buf = new Uint8Array(C.size);
  const dv = new DataView(buf.buffer);
  header(dv, L.TW_EVENT_CONN_CLOSE, pid, tsNs);
  dv.setBigUint64(C.conn_id, BigInt(connId), true);
  dv.setBigUint64(C.egress_bytes, BigInt(egress), true);
  dv.setBigUint64(C.ingress_bytes, BigInt(ingress), true);
  return buf;
}

export function procExitRecord(pid: number, tsNs: number): Uint8Array {
  const buf = new Uint8Array(L.tw_proc_exit_event.size);
  header(new DataView(buf.buffer), L.TW_EVENT_PROC_EXIT, pid, tsNs);
  return buf;
}

/** Records of one connection, keeping its stream positions. */
export function connectionWriter(spec: ConnSpec) {
  const pos: [number, number] = [0, 0];
  let ts = 1_000_000;
  return {
    open: () => connOpenRecord(spec, ts++),
    data(direction: 0 | 1, bytes: Uint8Array | string, skipped = 0) {
      const b = typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes;
      const r = dataRecord(spec.connId, spec.pid, direction, pos[direction], b, (ts += 1000), skipped, pos[direction ^ 1]);
      pos[direction] += b.length + skipped;
      return r;
    },
    /** Lose `n` bytes in a direction (the record that held them never arrives). */
    lose(direction: 0 | 1, n: number) {
      pos[direction] += n;
    },
    close: () => connCloseRecord(spec.connId, spec.pid, pos[0], pos[1], (ts += 1000)),
  };
}

/** Concatenate records the way the ring buffer lays them out for the pipeline's record(). */
export function feed(pipeline: { record(b: Uint8Array, v: DataView, o: number, l: number): void; endBatch(): void }, records: Uint8Array[]) {
  for (const r of records) pipeline.record(r, new DataView(r.buffer, r.byteOffset, r.byteLength), 0, r.length);
  pipeline.endBatch();
}

export function libOpenRecord(pid: number, fd: number, path: string, tsNs: number): Uint8Array {
  const E = L.tw_lib_open_event;
  const buf = new Uint8Array(E.size);
  const dv = new DataView(buf.buffer);
  header(dv, L.TW_EVENT_LIB_OPEN, pid, tsNs);
  dv.setInt32(E.fd, fd, true);
  buf.set(new TextEncoder().encode(path), E.path);
  return buf;
}
