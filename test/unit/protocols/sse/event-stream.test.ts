// The event stream reader: fields, line endings of every kind, comments, multi-line data,
// events without data, a byte order mark, every split point, and the bound on data.
import { describe, expect, test } from "bun:test";
import { createEventStreamReader, type SseEvent } from "../../../../src/protocols/sse/event-stream.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const ev = (e: Partial<SseEvent>): SseEvent => ({ id: "", event: "", data: "", retry: undefined, truncated: false, ...e });

describe("event stream", () => {
  const stream = "\ufeff: comment\nretry: 300\n\nid: 7\nevent: tick\ndata: one\ndata:two\ndata\n\ndata: crlf\r\n\r\ndata: cr\r\rignored: field\ndata: last\n\n";
  const expected = [ev({ id: "7", event: "tick", data: "one\ntwo\n" }), ev({ data: "crlf" }), ev({ data: "cr" }), ev({ data: "last" })];

  test("fields and line endings; an event without data is not sent; retry belongs to its event", () => {
    const r = createEventStreamReader(1 << 20);
    expect(r.push(enc(stream))).toEqual(expected);
    const withRetry = createEventStreamReader(1 << 20);
    expect(withRetry.push(enc("retry: 300\ndata: x\n\nretry: no\ndata: y\n\n"))).toEqual([ev({ data: "x", retry: 300 }), ev({ data: "y" })]);
  });

  test("at every split point, the same events", () => {
    const bytes = enc(stream);
    for (let cut = 0; cut <= bytes.length; cut++) {
      const r = createEventStreamReader(1 << 20);
      expect([...r.push(bytes.subarray(0, cut)), ...r.push(bytes.subarray(cut))]).toEqual(expected);
    }
  });

  test("data past the bound is cut and marked; a line that never ends costs the bound", () => {
    const r = createEventStreamReader(10);
    expect(r.push(enc("data: 0123456789abcdef\n\n"))).toEqual([ev({ data: "0123456789", truncated: true })]);
    // Lines past the bound are not kept at all.
    const many = createEventStreamReader(10);
    many.push(enc("data: x\n".repeat(100_000)));
    const [long] = many.push(enc("\n"));
    expect(long!.truncated).toBe(true);
    expect(long!.data.length).toBeLessThanOrEqual(10);
    const endless = createEventStreamReader(100);
    for (let i = 0; i < 1000; i++) expect(endless.push(enc("x".repeat(1000)))).toEqual([]);
    expect(endless.push(enc("\ndata: after\n\n"))).toEqual([ev({ data: "after" })]);
  });
});
