// WebSocket frames and messages: header lengths of every size, the client's masking, every
// split point, fragments with a control frame between them, close codes, permessage-deflate
// with and without context takeover (compressed by zlib as a peer would), and the bounds — a
// frame announcing 2^53 bytes allocates the bound, a length no frame can have stops reading.
import { describe, expect, test } from "bun:test";
import { constants, createDeflateRaw } from "node:zlib";
import { createFrameReader } from "../../../../src/protocols/websocket/frames.ts";
import { createMessageAssembler } from "../../../../src/protocols/websocket/messages.ts";
import { createWebSocketConnection, permessageDeflate } from "../../../../src/protocols/websocket/connection.ts";
import { looksLikeWebSocketFrames } from "../../../../src/protocols/sniff.ts";

/** One frame as a peer sends it; `mask` for a client's. */
function frame(opcode: number, payload: Uint8Array | string, opts: { fin?: boolean; rsv1?: boolean; mask?: number[] } = {}): Uint8Array {
  const p = typeof payload === "string" ? new TextEncoder().encode(payload) : payload;
  const head: number[] = [(opts.fin === false ? 0 : 0x80) | (opts.rsv1 ? 0x40 : 0) | opcode];
  const m = opts.mask ? 0x80 : 0;
  if (p.length < 126) head.push(m | p.length);
  else if (p.length < 65536) head.push(m | 126, p.length >> 8, p.length & 0xff);
  else head.push(m | 127, 0, 0, 0, 0, (p.length >>> 24) & 0xff, (p.length >> 16) & 0xff, (p.length >> 8) & 0xff, p.length & 0xff);
  if (opts.mask) head.push(...opts.mask);
  const body = opts.mask ? p.map((b, i) => b ^ opts.mask![i & 3]!) : p;
  return new Uint8Array([...head, ...body]);
}
const cat = (...parts: Uint8Array[]) => new Uint8Array(Buffer.concat(parts));
const text = (b: Uint8Array) => new TextDecoder().decode(b);

/** Messages compressed as one permessage-deflate sender does: one raw deflate stream, each
 * message flushed and its 00 00 ff ff tail cut; `reset`: no context takeover. */
async function deflateMessages(messages: string[], reset = false): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  let d = createDeflateRaw();
  for (const m of messages) {
    if (reset) d = createDeflateRaw();
    const chunks: Buffer[] = [];
    d.on("data", (c) => chunks.push(c));
    d.write(m);
    await new Promise((r) => d.flush(constants.Z_SYNC_FLUSH, r as () => void));
    d.removeAllListeners("data");
    const all = Buffer.concat(chunks);
    out.push(new Uint8Array(all.subarray(0, all.length - 4)));
  }
  return out;
}

describe("frames", () => {
  const mask = [0x12, 0x34, 0x56, 0x78];
  const wire = cat(frame(1, "short", { mask }), frame(2, new Uint8Array(300).fill(7), { mask }), frame(2, new Uint8Array(70_000).map((_, i) => i & 0xff)), frame(9, ""));
  test("7-, 16- and 64-bit lengths, masked and not, at every split point", () => {
    const whole = createFrameReader(1 << 20).push(wire);
    expect(whole.map((f) => [f.opcode, f.size, f.fin])).toEqual([
      [1, 5, true],
      [2, 300, true],
      [2, 70_000, true],
      [9, 0, true],
    ]);
    expect(text(whole[0]!.payload)).toBe("short");
    expect(whole[1]!.payload).toEqual(new Uint8Array(300).fill(7));
    expect(whole[2]!.payload[69_999]).toBe(69_999 & 0xff);
    for (let cut = 0; cut <= wire.length; cut += cut < 400 ? 1 : 997) {
      const r = createFrameReader(1 << 20);
      expect([...r.push(wire.subarray(0, cut)), ...r.push(wire.subarray(cut))]).toEqual(whole);
    }
  });

  test("a payload past the bound is kept up to it; 2^53 announced allocates the bound; 2^63 is not a frame", () => {
    const r = createFrameReader(10);
    const [f] = r.push(frame(2, new Uint8Array(100).fill(1), { mask }));
    expect([f!.size, f!.payload.length]).toEqual([100, 10]);
    const huge = createFrameReader(64);
    expect(huge.push(new Uint8Array([0x82, 127, 0, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2]))).toEqual([]);
    expect(huge.broken).toBe(false);
    const bad = createFrameReader(64);
    expect(bad.push(new Uint8Array([0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 1]))).toEqual([]);
    expect(bad.broken).toBe(true);
  });
});

describe("messages", () => {
  test("fragments joined, a ping between them on its own, a close's code and reason", () => {
    const a = createMessageAssembler({ maxBytes: 1 << 20 });
    const frames = createFrameReader(1 << 20).push(cat(frame(1, "one ", { fin: false }), frame(9, "ping!"), frame(0, "two ", { fin: false }), frame(0, "three"), frame(8, cat(new Uint8Array([0x0f, 0xa0]), new TextEncoder().encode("bye")))));
    const out = frames.map((f) => a.frame(f)).filter(Boolean);
    expect(out.map((m) => [m!.type, m!.type === "close" ? "" : text(m!.data), m!.fragments, m!.size])).toEqual([
      ["ping", "ping!", 1, 5],
      ["text", "one two three", 3, 13],
      ["close", "", 1, 5],
    ]);
    expect([out[2]!.closeCode, out[2]!.closeReason]).toEqual([4000, "bye"]);
  });

  test("permessage-deflate with context takeover: later messages refer to earlier ones", async () => {
    const texts = ["hello tapwire, hello websocket", "hello tapwire, hello again", "x".repeat(40_000) + " end", "hello tapwire, hello websocket"];
    const compressed = await deflateMessages(texts);
    // The fourth refers back into what the first sent: smaller than on its own.
    expect(compressed[3]!.length).toBeLessThan(compressed[0]!.length);
    const a = createMessageAssembler({ maxBytes: 1 << 20, deflate: { contextTakeover: true } });
    const got = compressed.map((c) => a.frame({ fin: true, rsv1: true, opcode: 1, size: c.length, payload: c })!);
    expect(got.map((m) => [text(m.data), m.compressed, m.error])).toEqual(texts.map((t) => [t, true, ""]));
  });

  test("without context takeover each message stands alone; a message kept only in part loses the context, said", async () => {
    const texts = ["same words, same words", "same words, same words"];
    const alone = await deflateMessages(texts, true);
    const a = createMessageAssembler({ maxBytes: 1 << 20, deflate: { contextTakeover: false } });
    expect(alone.map((c) => text(a.frame({ fin: true, rsv1: true, opcode: 1, size: c.length, payload: c })!.data))).toEqual(texts);
    const linked = await deflateMessages(texts);
    const cut = createMessageAssembler({ maxBytes: 1 << 20, deflate: { contextTakeover: true }, maxCompressed: 4 });
    const first = cut.frame({ fin: true, rsv1: true, opcode: 1, size: linked[0]!.length, payload: linked[0]! })!;
    expect(first.error).toBe("compressed message longer than kept: not decompressed");
    const second = cut.frame({ fin: true, rsv1: true, opcode: 1, size: linked[1]!.length, payload: linked[1]!.subarray(0, 4) })!;
    expect(second.error).not.toBe("");
  });

  test("a payload cut to the bound is a copy: the message does not hold the frame's buffer", () => {
    const a = createMessageAssembler({ maxBytes: 1024 });
    const [f] = createFrameReader(1 << 20).push(frame(2, new Uint8Array(500_000).fill(3)));
    const m = a.frame(f!)!;
    expect([m.data.length, m.truncated, m.size]).toEqual([1024, true, 500_000]);
    expect(m.data.buffer.byteLength).toBeLessThan(4096);
  });

  test("the 101's extensions say which side keeps its context", () => {
    expect(permessageDeflate("permessage-deflate; server_no_context_takeover; client_max_window_bits=15")).toEqual({ clientContextTakeover: true, serverContextTakeover: false });
    expect(permessageDeflate("x-other, permessage-deflate")).toEqual({ clientContextTakeover: true, serverContextTakeover: true });
    expect(permessageDeflate("")).toBeUndefined();
    const conn = createWebSocketConnection({ extensions: "", maxBytes: 100 });
    expect(conn.push(true, frame(1, "a", { mask: [1, 2, 3, 4] }))[0]!.type).toBe("text");
    expect(conn.push(false, frame(8, new Uint8Array([3, 232])))[0]!.closeCode).toBe(1000);
    expect(conn.closed).toBe(false);
    conn.push(true, frame(8, new Uint8Array([3, 232]), { mask: [9, 9, 9, 9] }));
    expect(conn.closed).toBe(true);
  });
});

describe("telling a joined connection's frames from other bytes", () => {
  test("whole frames, masked or not, one or several, are WebSocket; a cut frame, HTTP, TLS and other binary are not", () => {
    expect(looksLikeWebSocketFrames(frame(1, "hello", { mask: [1, 2, 3, 4] }))).toBe(true);
    expect(looksLikeWebSocketFrames(cat(frame(2, new Uint8Array(300)), frame(9, "p")))).toBe(true);
    expect(looksLikeWebSocketFrames(frame(1, "hello").subarray(0, 5))).toBe(false);
    expect(looksLikeWebSocketFrames(cat(frame(1, "a"), new Uint8Array([0x81])))).toBe(false);
    expect(looksLikeWebSocketFrames(new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n"))).toBe(false);
    expect(looksLikeWebSocketFrames(new Uint8Array([0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5]))).toBe(false);
    expect(looksLikeWebSocketFrames(frame(1, "x", { fin: false }))).toBe(false); // a fragment start
    expect(looksLikeWebSocketFrames(frame(9, new Uint8Array(126)))).toBe(false); // a control frame too long
    expect(looksLikeWebSocketFrames(new Uint8Array([0x00, 0x00, 0x00, 0x08, 0x04, 0xd2, 0x16, 0x2f]))).toBe(false); // PostgreSQL's SSLRequest
  });
});

