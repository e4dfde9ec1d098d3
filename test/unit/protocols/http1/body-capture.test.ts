// The body bytes the HTTP/1 parser keeps (body-capture.ts): views of the pushed bytes where
// possible, copies where the bytes are reused, at most maxBody of them, and a true prefix
// once bytes were lost.
import { describe, expect, test } from "bun:test";
import { BodyCapture, SMALL_PIECE } from "../../../../src/protocols/http1/body-capture.ts";
import { MAX_PARTS } from "../../../../src/protocols/http1/limits.ts";
import { bytes, latin1 } from "./harness.ts";

describe("body capture", () => {
  test("one large piece is the pushed bytes themselves, not a copy", () => {
    const text = "x".repeat(SMALL_PIECE + 1);
    const push = bytes(`head:${text}`);
    const c = new BodyCapture(1 << 20);
    c.add(push, 5, push.length, false);
    const body = c.take();
    expect(latin1(body)).toBe(text);
    expect(body.buffer).toBe(push.buffer);
    expect(body.byteOffset).toBe(push.byteOffset + 5);
  });

  test("a small piece is copied (cheaper than a view): the same bytes, not the pushed buffer", () => {
    const push = bytes("head:hello");
    const c = new BodyCapture(100);
    c.add(push, 5, 10, false);
    push.fill(0x2e);
    const body = c.take();
    expect(latin1(body)).toBe("hello");
    expect(body.buffer).not.toBe(push.buffer);
  });

  test("bytes from a reused buffer are copied", () => {
    const reused = bytes("hello");
    const c = new BodyCapture(100);
    c.add(reused, 0, 5, true);
    reused.fill(0x2e);
    const body = c.take();
    expect(latin1(body)).toBe("hello");
    expect(body.buffer).not.toBe(reused.buffer);
  });

  test("at most maxBody bytes: the first ones", () => {
    const c = new BodyCapture(7);
    c.add(bytes("abcd"), 0, 4, false);
    c.add(bytes("efgh"), 0, 4, false);
    c.add(bytes("ijkl"), 0, 4, false);
    expect(latin1(c.take())).toBe("abcdefg");
    const none = new BodyCapture(0);
    none.add(bytes("abc"), 0, 3, false);
    expect(none.take().length).toBe(0);
  });

  test("many pieces are joined in order, past the views kept as they are", () => {
    const c = new BodyCapture(1 << 20);
    let want = "";
    for (let i = 0; i < MAX_PARTS * 3; i++) {
      const piece = `<${i}>`;
      want += piece;
      c.add(bytes(piece), 0, piece.length, i % 2 === 0);
    }
    expect(latin1(c.take())).toBe(want);
  });

  test("after stopKeeping nothing more is kept; take starts the next body afresh", () => {
    const c = new BodyCapture(100);
    c.add(bytes("before"), 0, 6, false);
    c.stopKeeping();
    c.add(bytes("after"), 0, 5, false);
    expect(latin1(c.take())).toBe("before");
    c.add(bytes("next"), 0, 4, false);
    expect(latin1(c.take())).toBe("next");
    expect(c.take().length).toBe(0);
  });
});
