// The ring reader's walk over a ring in plain memory (fake-ring.ts lays it out as the
// kernel does): records delivered in order and whole, busy and discarded records, wrap.
import { describe, expect, test } from "bun:test";
import { readRing } from "../../../src/bpf/ring-reader.ts";
import { createFakeRing, payload, recordSpace, type FakeRing } from "./fake-ring.ts";

interface Seen {
  bytes: number[];
  offset: number;
  length: number;
}

/** Drains `ring`, keeping a copy of every record handed over. */
function drainAll(ring: FakeRing, budget?: number): { handled: number; seen: Seen[] } {
  const seen: Seen[] = [];
  const reader = readRing(ring.memory);
  const handled = reader.drain((bytes, view, offset, length) => {
    expect(view.buffer).toBe(bytes.buffer);
    seen.push({ bytes: [...bytes.subarray(offset, offset + length)], offset, length });
  }, budget);
  return { handled, seen };
}

const list = (p: Uint8Array) => [...p];

describe("ring reader", () => {
  test("records are delivered in order, whole, and the consumer ends at the producer", () => {
    const ring = createFakeRing(4096);
    const sent = [payload(24, 1), payload(1, 2), payload(100, 3), payload(56, 4)];
    for (const p of sent) ring.write(p);
    const { handled, seen } = drainAll(ring);
    expect(handled).toBe(4);
    expect(seen.map((s) => s.bytes)).toEqual(sent.map(list));
    expect(seen.map((s) => s.offset)).toEqual([8, 8 + 32, 8 + 32 + 16, 8 + 32 + 16 + 112]);
    expect(ring.consumer).toBe(ring.producer);
    expect(readRing(ring.memory).pending()).toBe(0);
  });

  test("an empty ring hands over nothing and leaves the consumer alone", () => {
    const ring = createFakeRing(4096);
    ring.producer = ring.consumer = 4096 * 3 + 64;
    expect(drainAll(ring).handled).toBe(0);
    expect(ring.consumer).toBe(4096 * 3 + 64);
  });

  test("the budget bounds one drain; the next one goes on from there", () => {
    const ring = createFakeRing(4096);
    for (let i = 0; i < 5; i++) ring.write(payload(16, i));
    const reader = readRing(ring.memory);
    const got: number[] = [];
    expect(reader.drain((b, _v, off) => got.push(b[off]!), 2)).toBe(2);
    expect(reader.pending()).toBe(3 * recordSpace(16));
    expect(reader.drain((b, _v, off) => got.push(b[off]!))).toBe(3);
    expect(got).toEqual([0, 1, 2, 3, 4]);
    expect(ring.consumer).toBe(ring.producer);
  });

  test("a busy record stops the walk until it is committed", () => {
    const ring = createFakeRing(4096);
    ring.write(payload(16, 1));
    const busy = ring.write(payload(40, 2), { busy: true });
    ring.write(payload(8, 3));
    const reader = readRing(ring.memory);
    const got: number[][] = [];
    const keep = (b: Uint8Array, _v: DataView, off: number, len: number) => void got.push([...b.subarray(off, off + len)]);
    expect(reader.drain(keep)).toBe(1);
    expect(ring.consumer).toBe(busy);
    expect(reader.drain(keep)).toBe(0);
    expect(ring.consumer).toBe(busy);
    ring.setHeader(busy, 40); // submitted
    expect(reader.drain(keep)).toBe(2);
    expect(got).toEqual([list(payload(16, 1)), list(payload(40, 2)), list(payload(8, 3))]);
    expect(ring.consumer).toBe(ring.producer);
  });

  test("discarded records are stepped over, not handed over", () => {
    const ring = createFakeRing(4096);
    ring.write(payload(16, 1));
    ring.write(payload(200, 2), { discard: true });
    ring.write(payload(8, 3));
    ring.write(payload(33, 4), { discard: true });
    const { handled, seen } = drainAll(ring);
    expect(handled).toBe(2);
    expect(seen.map((s) => s.bytes)).toEqual([list(payload(16, 1)), list(payload(8, 3))]);
    expect(ring.consumer).toBe(ring.producer);
  });

  test("a record wrapping the end of the data area is handed over whole, from the second mapping", () => {
    const size = 1024;
    const ring = createFakeRing(size);
    // Positions far past the first lap, the next record 24 bytes before the end of the area.
    ring.producer = ring.consumer = 5 * size + size - 24;
    const long = payload(300, 7);
    ring.write(long);
    ring.write(payload(12, 9));
    const { handled, seen } = drainAll(ring);
    expect(handled).toBe(2);
    expect(seen[0]).toEqual({ bytes: list(long), offset: size - 24 + 8, length: 300 });
    expect(seen[0]!.offset + seen[0]!.length).toBeGreaterThan(size);
    expect(seen[1]!.bytes).toEqual(list(payload(12, 9)));
    expect(ring.consumer).toBe(ring.producer);
  });

  test("a header exactly at the end of a lap is read at the start of the area", () => {
    const size = 1024;
    const ring = createFakeRing(size);
    ring.producer = ring.consumer = 2 * size - recordSpace(16);
    ring.write(payload(16, 1));
    ring.write(payload(16, 2));
    const { seen } = drainAll(ring);
    expect(seen.map((s) => [s.offset, s.bytes])).toEqual([[size - recordSpace(16) + 8, list(payload(16, 1))], [8, list(payload(16, 2))]]);
  });

  test("close releases the memory once; a closed reader reads nothing", () => {
    const ring = createFakeRing(4096);
    ring.write(payload(16, 1));
    const reader = readRing(ring.memory);
    reader.close();
    reader.close();
    expect(ring.releases).toBe(1);
    expect(reader.drain(() => {})).toBe(0);
    expect(reader.pending()).toBe(0);
    expect(ring.consumer).toBe(0);
  });
});
