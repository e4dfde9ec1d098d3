// The HTTP/2 frame reader: the preface, every split point, padding and priority fields taken
// off, and finding a frame boundary again after garbage, a gap or a mid-stream join.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { CLIENT_PREFACE, createFrameReader, Flag, FrameType, type Frame } from "../../../../src/protocols/http2/frames.ts";

function frame(type: number, flags: number, stream: number, payload: number[] | Uint8Array): Uint8Array {
  const p = payload instanceof Uint8Array ? payload : new Uint8Array(payload);
  const out = new Uint8Array(9 + p.length);
  out[0] = p.length >> 16;
  out[1] = (p.length >> 8) & 0xff;
  out[2] = p.length & 0xff;
  out[3] = type;
  out[4] = flags;
  new DataView(out.buffer).setUint32(5, stream);
  out.set(p, 9);
  return out;
}

const cat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};

interface Seen {
  type: number;
  flags: number;
  streamId: number;
  payload: number[];
}

function reader(opts: { expectPreface?: boolean; resync?: boolean } = {}) {
  const frames: Seen[] = [];
  const skips: [number, string][] = [];
  const r = createFrameReader({
    expectPreface: opts.expectPreface ?? false,
    resync: opts.resync ?? false,
    onFrame: (f: Frame) => frames.push({ type: f.type, flags: f.flags, streamId: f.streamId, payload: [...f.payload] }),
    onSkip: (n, why) => skips.push([n, why]),
  });
  return { r, frames, skips };
}

const preface = new TextEncoder().encode(CLIENT_PREFACE);
const settings = frame(FrameType.SETTINGS, 0, 0, [0, 3, 0, 0, 0, 100]);
const headers = frame(FrameType.HEADERS, Flag.END_HEADERS, 1, [0x82, 0x86, 0x84]);
const data = frame(FrameType.DATA, Flag.END_STREAM, 1, [104, 105]);
const stream = cat(preface, settings, headers, data);
const expected: Seen[] = [
  { type: FrameType.SETTINGS, flags: 0, streamId: 0, payload: [0, 3, 0, 0, 0, 100] },
  { type: FrameType.HEADERS, flags: Flag.END_HEADERS, streamId: 1, payload: [0x82, 0x86, 0x84] },
  { type: FrameType.DATA, flags: Flag.END_STREAM, streamId: 1, payload: [104, 105] },
];

describe("HTTP/2 frame reader", () => {
  test("preface then frames, split at every point into two pushes", () => {
    for (let cut = 0; cut <= stream.length; cut++) {
      const { r, frames, skips } = reader({ expectPreface: true });
      r.push(stream.subarray(0, cut), 1);
      r.push(stream.subarray(cut), 2);
      expect(frames).toEqual(expected);
      expect(skips).toEqual([]);
      expect(r.pending).toBe(0);
    }
  });

  test("one byte at a time", () => {
    const { r, frames } = reader({ expectPreface: true });
    for (const b of stream) r.push(new Uint8Array([b]), 1);
    expect(frames).toEqual(expected);
  });

  test("padding and priority fields are taken off HEADERS, DATA and PUSH_PROMISE", () => {
    const { r, frames } = reader();
    r.push(
      cat(
        frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.PADDED | Flag.PRIORITY, 3, [2, 0, 0, 0, 1, 15, 0x82, 0x84, 0, 0]),
        frame(FrameType.DATA, Flag.PADDED, 3, [3, 1, 2, 0, 0, 0]),
        frame(FrameType.PUSH_PROMISE, Flag.END_HEADERS | Flag.PADDED, 3, [1, 0, 0, 0, 2, 0x82, 0]),
      ),
      1,
    );
    expect(frames.map((f) => f.payload)).toEqual([[0x82, 0x84], [1, 2], [0, 0, 0, 2, 0x82]]);
  });

  test("padding longer than the frame is skipped as malformed, and reading goes on", () => {
    const { r, frames, skips } = reader();
    r.push(cat(frame(FrameType.DATA, Flag.PADDED, 1, [9, 1]), data), 1);
    expect(frames).toEqual([expected[2]!]);
    expect(skips).toEqual([[11, "malformed DATA frame on stream 1"]]);
  });

  test("joined mid-stream: the tail of a frame is skipped up to a boundary confirmed by the next header", () => {
    const { r, frames, skips } = reader({ resync: true });
    const tail = frame(FrameType.DATA, 0, 5, new Uint8Array(300).fill(0x41)).subarray(120);
    r.push(cat(tail, headers, data), 1);
    expect(frames).toEqual(expected.slice(1));
    expect(skips).toEqual([[tail.length, "looking for a frame boundary"]]);
  });

  test("no preface where one was expected: frames are looked for instead", () => {
    const { r, frames } = reader({ expectPreface: true });
    r.push(cat(settings, headers, data), 1);
    expect(frames).toEqual(expected);
  });

  test("after a gap the next boundary is found again", () => {
    const { r, frames } = reader();
    r.push(cat(settings, headers.subarray(0, 5)), 1);
    r.gap(100);
    r.push(cat(new Uint8Array([1, 2, 3, 4]), headers, data), 2);
    expect(frames).toEqual(expected);
  });

  test("random bytes and cut streams: no exception, no hang, bounded memory", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 4000 }), fc.array(fc.nat(4000), { maxLength: 6 }), fc.boolean(), (bytes, cuts, resync) => {
        const { r } = reader({ resync, expectPreface: !resync });
        let at = 0;
        for (const c of [...cuts].sort((a, b) => a - b)) {
          r.push(bytes.subarray(at, Math.max(at, c)), 1);
          at = Math.max(at, c);
        }
        r.push(bytes.subarray(at), 1);
        expect(r.pending).toBeLessThanOrEqual(bytes.length);
      }),
      { numRuns: 500, seed: 3 },
    );
  });
});
