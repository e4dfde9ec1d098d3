// The connection table on its own: events put back in stream order, both directions kept in
// the order they arrived while one waits for earlier bytes, and gaps said only when bytes are
// really missing at the end of a batch.
import { describe, expect, test } from "bun:test";
import { createConnectionTable } from "../../../src/conn/connection-table.ts";
import { createProcessRegistry } from "../../../src/procs/process-registry.ts";
import type { DataEvent, Direction } from "../../../src/bpf/events.ts";

function setup() {
  const log: string[] = [];
  const table = createConnectionTable({
    processes: createProcessRegistry("/nonexistent"),
    openStream: () => ({
      data: (d, b, _ts, behind) => log.push(`data ${d} ${b[0]}x${b.length}${behind ? ` behind ${behind}` : ""}`),
      gap: (d, lost) => log.push(`gap ${d} ${lost}`),
      unseen() {},
      close() {},
    }),
  });
  table.handle({ kind: "conn-open", connId: 1, pid: 1, tid: 1, tsNs: 0, fd: 3, comm: "x", family: 4, localIp: "127.0.0.1", localPort: 80, remoteIp: "127.0.0.1", remotePort: 5000, origin: 1, connClass: 1, tlsLib: 0, cgroupId: 0 });
  /** `len` bytes of value `tag` at `pos` in direction `dir`; the other direction was at `peerPos`. */
  const data = (dir: Direction, pos: number, len: number, tag: number, peerPos = 0): DataEvent => ({ kind: "data", pid: 1, tid: 1, tsNs: 0, connId: 1, direction: dir, pos, peerPos, data: new Uint8Array(len).fill(tag), skipped: 0, flags: 0 });
  return { table, log, data };
}

describe("connection table", () => {
  test("while an event waits for earlier bytes of its direction, the other direction waits behind it", () => {
    const { table, log, data } = setup();
    table.handle(data(1, 10, 10, 2)); // a request's second part, ahead of its first
    table.handle(data(0, 0, 5, 9)); // the response to it
    table.handle(data(1, 0, 10, 1)); // the first part, late (another writer's)
    table.endBatch();
    expect(log).toEqual(["data 1 1x10", "data 1 2x10", "data 0 9x5"]);
    expect(table.stats.lostBytes).toBe(0);
  });

  test("many events of the other direction while one waits: nothing is called lost when the late bytes come", () => {
    const { table, log, data } = setup();
    table.handle(data(0, 10, 10, 2));
    for (let i = 0; i < 300; i++) table.handle(data(1, i * 100, 100, 7));
    table.handle(data(0, 0, 10, 1));
    table.endBatch();
    expect(table.stats.lostBytes).toBe(0);
    expect(log.filter((l) => l.startsWith("gap"))).toEqual([]);
    expect(log.slice(0, 2)).toEqual(["data 0 1x10", "data 0 2x10"]);
    expect(log.length).toBe(302);
  });

  test("bytes still missing when the batch ends are a gap, said before what follows them", () => {
    const { table, log, data } = setup();
    table.handle(data(1, 0, 10, 1));
    table.handle(data(1, 30, 10, 3)); // 20 bytes lost before it
    table.handle(data(0, 0, 5, 9, 40));
    table.endBatch();
    expect(log).toEqual(["data 1 1x10", "gap 1 20", "data 1 3x10", "data 0 9x5"]);
    expect(table.stats.lostBytes).toBe(20);
  });

  test("the other direction's position says how far behind it is, from the connection's start", () => {
    const { table, log, data } = setup();
    table.handle(data(0, 0, 5, 9, 28)); // a response; the 28 bytes of its request never came
    table.handle(data(1, 28, 10, 1, 5));
    table.endBatch();
    expect(log).toEqual(["data 0 9x5 behind 28", "gap 1 28", "data 1 1x10"]);
  });
});
