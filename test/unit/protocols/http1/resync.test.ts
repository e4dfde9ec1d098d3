// Where the next HTTP/1 message starts (resync.ts): at a clean boundary, after garbage, and at
// the end of the stream, with what is skipped counted.
import { describe, expect, test } from "bun:test";
import { Resync } from "../../../../src/protocols/http1/resync.ts";
import { bytes } from "./harness.ts";

describe("at a clean boundary", () => {
  test("a start line where the last message ended; empty lines before it are not garbage", () => {
    const r = new Resync(true);
    expect(r.seek(bytes("\r\n\r\nBREW /pot HTTP/1.1\r\n"), 0)).toBe(4);
    expect([r.found, r.skipped, r.strict]).toEqual([true, 0, false]);
  });

  test("a start line not yet whole: wait for more from where it begins", () => {
    const r = new Resync(false);
    expect(r.seek(bytes("\r\nHTTP/1.1 2"), 0)).toBe(2);
    expect([r.found, r.skipped]).toEqual([false, 0]);
  });

  test("only empty lines: nothing to keep", () => {
    const r = new Resync(true);
    expect(r.seek(bytes("\r\n\n"), 0)).toBe(3);
    expect(r.found).toBe(false);
  });
});

describe("after garbage", () => {
  test("garbage makes the search strict until a start line is found; what is skipped is counted", () => {
    const r = new Resync(false);
    const data = bytes("\x00\x01 HTTP/2 HTTP/1.1 200 OK\r\n");
    expect(r.seek(data, 0)).toBe(10);
    expect([r.found, r.skipped, r.strict]).toEqual([true, 10, false]);
  });

  test("requests: a known method anywhere; an unknown one only at the start of a line", () => {
    const glued = new Resync(true);
    expect(glued.seek(bytes("\x00xxGET / HTTP/1.1\r\n"), 0)).toBe(3);
    const lineStart = new Resync(true);
    expect(lineStart.seek(bytes("\x00x\nPROPFIND / HTTP/1.1\r\n"), 0)).toBe(3);
    const midLine = new Resync(true);
    const data = bytes("\x00x PROPFIND / HTTP/1.1\r\n");
    expect(midLine.seek(data, 0)).toBe(data.length);
    expect([midLine.found, midLine.skipped]).toEqual([false, data.length]);
  });

  test("the byte before the bytes searched counts as the start of a line", () => {
    const r = new Resync(true);
    r.strict = true;
    r.prevByte = 0x0a;
    expect(r.seek(bytes("PROPFIND / HTTP/1.1\r\n"), 0)).toBe(0);
    expect(r.found).toBe(true);
    const afterGap = new Resync(true);
    afterGap.strict = true;
    afterGap.prevByte = 0;
    expect(afterGap.seek(bytes("PROPFIND / HTTP/1.1\r\n"), 0)).toBe(21);
  });

  test("capitals at the end may still become a method: kept, not counted", () => {
    const r = new Resync(true);
    r.strict = true;
    expect(r.seek(bytes("zzzzGE"), 0)).toBe(4);
    expect([r.found, r.skipped]).toEqual([false, 4]);
  });
});

describe("at the end of the stream", () => {
  test("a start line lacking only its line end still begins a message", () => {
    const r = new Resync(true);
    expect(r.seekAtEnd(bytes("\r\nGET / HTTP/1.1"))).toBe(2);
    expect(r.skipped).toBe(0);
  });

  test("anything else is skipped and counted", () => {
    const r = new Resync(false);
    expect(r.seekAtEnd(bytes("HTTP/1.1 20"))).toBe(-1);
    expect(r.skipped).toBe(11);
    const blank = new Resync(false);
    expect(blank.seekAtEnd(bytes("\r\n"))).toBe(-1);
    expect(blank.skipped).toBe(0);
  });
});
