// The ring reader's walk over a ring in plain memory (fake-ring.ts lays it out as the
// kernel does): records delivered in order and whole, busy and discarded records, wrap;
// headers and positions that do not fit what the producer wrote are counted and skipped.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { readRing, type RingReader } from "../../../src/bpf/ring-reader.ts";
import { BUSY_BIT, DISCARD_BIT, createFakeRing, payload, recordSpace, type FakeRing } from "./fake-ring.ts";

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

describe("ring reader: headers are not trusted", () => {
  /** Drains with a reader the caller keeps (to read its stats), copying every record. */
  const drainWith = (reader: RingReader, budget?: number) => {
    const seen: number[][] = [];
    const handled = reader.drain((b, _v, off, len) => void seen.push([...b.subarray(off, off + len)]), budget);
    return { handled, seen };
  };

  test("a length beyond what the producer wrote: counted, the records before it delivered, the consumer at the producer", () => {
    const ring = createFakeRing(4096);
    ring.write(payload(16, 1));
    ring.write(payload(24, 2));
    const bad = ring.write(payload(32, 3));
    ring.write(payload(8, 4));
    ring.setHeader(bad, 32 + 3 * 8 + 17); // runs past the last record, which ends at the producer
    const reader = readRing(ring.memory);
    const { handled, seen } = drainWith(reader);
    expect(handled).toBe(2);
    expect(seen).toEqual([list(payload(16, 1)), list(payload(24, 2))]);
    expect(ring.consumer).toBe(ring.producer);
    expect(reader.stats).toEqual({ badRecords: 1, skippedBytes: recordSpace(32) + recordSpace(8) });
    // The ring goes on: later records are read as usual.
    ring.write(payload(40, 5));
    expect(drainWith(reader).seen).toEqual([list(payload(40, 5))]);
    expect(reader.stats.badRecords).toBe(1);
  });

  test("a length one byte past the producer is enough to be refused", () => {
    const ring = createFakeRing(4096);
    const at = ring.write(payload(16, 1)); // space 24: the producer is 24 bytes on
    ring.setHeader(at, 17); // space 32
    const reader = readRing(ring.memory);
    expect(drainWith(reader).handled).toBe(0);
    expect(reader.stats).toEqual({ badRecords: 1, skippedBytes: 24 });
    expect(ring.consumer).toBe(ring.producer);
  });

  test.each([
    ["larger than the data area", 4096 + 8],
    ["the largest a header can say", 0x3fff_ffff],
    ["the largest, discarded", 0x3fff_ffff | DISCARD_BIT],
  ])("a length %s: counted and skipped, nothing read past the mapping", (_what, word) => {
    const ring = createFakeRing(4096);
    ring.producer = ring.consumer = 4096 * 7 + 4000; // near the end of the area: a long length would run off the mapping
    ring.write(payload(16, 1));
    const bad = ring.write(payload(100, 2));
    ring.setHeader(bad, word);
    const reader = readRing(ring.memory);
    let past = 0;
    const handled = reader.drain((b, _v, off, len) => {
      if (off + len > b.length) past++;
    });
    expect(handled).toBe(1);
    expect(past).toBe(0);
    expect(reader.stats.badRecords).toBe(1);
    expect(ring.consumer).toBe(ring.producer);
  });

  test("fewer bytes left than a header (the producer not on a record boundary)", () => {
    const ring = createFakeRing(4096);
    ring.write(payload(16, 1));
    ring.producer += 4;
    const reader = readRing(ring.memory);
    expect(drainWith(reader).seen).toEqual([list(payload(16, 1))]);
    expect(reader.stats).toEqual({ badRecords: 1, skippedBytes: 4 });
    expect(ring.consumer).toBe(ring.producer);
  });

  test("the bad header is met past the budget's end: the budget is kept, the next drain counts it", () => {
    const ring = createFakeRing(4096);
    ring.write(payload(16, 1));
    const bad = ring.write(payload(16, 2));
    ring.setHeader(bad, 4000);
    const reader = readRing(ring.memory);
    expect(drainWith(reader, 1).handled).toBe(1);
    expect(reader.stats.badRecords).toBe(0);
    expect(drainWith(reader, 1).handled).toBe(0);
    expect(reader.stats.badRecords).toBe(1);
    expect(ring.consumer).toBe(ring.producer);
  });

  test.each([
    ["the consumer ahead of the producer", 1000, 64],
    ["the producer more than the data area ahead", 0, 4096 + 64],
    ["the consumer not a multiple of 8", 4, 64],
  ])("%s: counted, the consumer moved to the producer, nothing read", (_what, cons, prod) => {
    const ring = createFakeRing(4096);
    for (let i = 0; i < 4; i++) ring.write(payload(8, i));
    ring.consumer = cons;
    ring.producer = prod;
    const reader = readRing(ring.memory);
    expect(drainWith(reader).handled).toBe(0);
    expect(reader.stats.badRecords).toBe(1);
    expect(ring.consumer).toBe(prod);
    expect(reader.pending()).toBe(0);
  });

  test("a busy header that is also too long waits, as any busy record does", () => {
    const ring = createFakeRing(4096);
    ring.write(payload(16, 1));
    const at = ring.write(payload(16, 2));
    ring.setHeader(at, BUSY_BIT | 0x3fff_ffff);
    const reader = readRing(ring.memory);
    expect(drainWith(reader).handled).toBe(1);
    expect(ring.consumer).toBe(at);
    expect(reader.stats.badRecords).toBe(0);
  });

  test("any garbage in the data area: no throw, no read outside the mapping or past the producer, the walk ends", () => {
    const size = 1024;
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: size, maxLength: size }),
        fc.nat({ max: 1 << 20 }),
        fc.nat({ max: size + 64 }),
        fc.nat({ max: 200 }),
        (garbage, start, ahead, budget) => {
          const ring = createFakeRing(size);
          ring.put(0, garbage);
          const cons = start & ~7;
          ring.consumer = cons;
          ring.producer = cons + ahead;
          const reader = readRing(ring.memory);
          let calls = 0;
          let end = cons;
          reader.drain((b, _v, off, len) => {
            calls++;
            if (off < 0 || off + len > b.length) throw new Error(`record at ${off}+${len} is outside the mapping`);
            // Every record lies inside what the producer wrote since the consumer's position.
            end += recordSpace(len);
            if (end > cons + ahead) throw new Error("a record runs past the producer");
          }, budget || undefined);
          if (budget && calls > budget) throw new Error("over budget");
          expect(ring.consumer).toBeLessThanOrEqual(ring.producer);
          // Stopped early only at a busy header, with the budget spent, or not at all.
          if (ring.consumer < ring.producer && calls !== budget) expect(ring.header(ring.consumer) & BUSY_BIT).not.toBe(0);
        },
      ),
      { numRuns: 2000 },
    );
  });
});
