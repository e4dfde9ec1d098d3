// How an HTTP/1 body's length is decided (framing.ts): each numbered case of framing() as a
// table, Content-Length values alone and repeated, and chunk-size lines.
import { describe, expect, test } from "bun:test";
import {
  addContentLength,
  BAD_CHUNK_SIZE,
  BAD_LENGTH,
  Framing,
  framing,
  NO_LENGTH,
  parseChunkSize,
  parseContentLength,
} from "../../../../src/protocols/http1/framing.ts";
import { bytes } from "./harness.ts";

describe("framing: the numbered cases", () => {
  // [case, what, isRequest, method (of the request answered), status, Transfer-Encoding, Content-Length, expected]
  const table: [number, string, boolean, string, number, string | null, number, Framing][] = [
    [1, "101 Switching Protocols", false, "GET", 101, null, NO_LENGTH, Framing.Switch],
    [1, "a response to HEAD, with Content-Length", false, "HEAD", 200, null, 100, Framing.None],
    [1, "a response to HEAD, chunked", false, "HEAD", 200, "chunked", NO_LENGTH, Framing.None],
    [1, "100 Continue", false, "POST", 100, null, NO_LENGTH, Framing.None],
    [1, "204 No Content, with Content-Length", false, "GET", 204, null, 5, Framing.None],
    [1, "304 Not Modified", false, "GET", 304, null, 5, Framing.None],
    [2, "200 to CONNECT", false, "CONNECT", 200, null, NO_LENGTH, Framing.Switch],
    [2, "407 to CONNECT has a body", false, "CONNECT", 407, null, 10, Framing.Length],
    [3, "chunked response, Content-Length ignored", false, "GET", 200, "chunked", 10, Framing.Chunked],
    [3, "chunked request", true, "POST", 0, "gzip, CHUNKED", NO_LENGTH, Framing.Chunked],
    [3, "response whose last coding is not chunked", false, "GET", 200, "chunked, gzip", NO_LENGTH, Framing.UntilClose],
    [3, "request whose last coding is not chunked", true, "POST", 0, "gzip", 10, Framing.Invalid],
    [4, "Content-Length", false, "GET", 200, null, 10, Framing.Length],
    [4, "Content-Length 0 on a request", true, "POST", 0, null, 0, Framing.Length],
    [4, "an invalid Content-Length", true, "POST", 0, null, BAD_LENGTH, Framing.Invalid],
    [4, "an invalid Content-Length on a response", false, "GET", 200, null, BAD_LENGTH, Framing.Invalid],
    [5, "a request with neither", true, "GET", 0, null, NO_LENGTH, Framing.None],
    [6, "a response with neither", false, "GET", 200, null, NO_LENGTH, Framing.UntilClose],
    [6, "a response with neither, its request unknown", false, "", 200, null, NO_LENGTH, Framing.UntilClose],
  ];
  for (const [n, what, isRequest, method, status, te, cl, want] of table) {
    test(`case ${n}: ${what}`, () => expect(framing(isRequest, method, status, te, cl)).toBe(want));
  }
});

describe("Content-Length values", () => {
  test("digits, with whitespace, or a list of equal values", () => {
    expect(parseContentLength("0")).toBe(0);
    expect(parseContentLength(" 42\t")).toBe(42);
    expect(parseContentLength("5, 5,5")).toBe(5);
    expect(parseContentLength("999999999999999")).toBe(999999999999999);
  });

  test("anything else is invalid", () => {
    for (const v of ["", " ", "x", "5x", "-5", "+5", "5,", ",5", "5, 6", "5 5", "1234567890123456", "0x10"]) {
      expect([v, parseContentLength(v)]).toEqual([v, BAD_LENGTH]);
    }
  });

  test("repeated fields: equal ones agree, any disagreement or invalid one is invalid for good", () => {
    expect(addContentLength(NO_LENGTH, "7")).toBe(7);
    expect(addContentLength(7, "7")).toBe(7);
    expect(addContentLength(7, "8")).toBe(BAD_LENGTH);
    expect(addContentLength(7, "x")).toBe(BAD_LENGTH);
    expect(addContentLength(BAD_LENGTH, "7")).toBe(BAD_LENGTH);
    expect(addContentLength(NO_LENGTH, "x")).toBe(BAD_LENGTH);
  });
});

describe("chunk-size lines", () => {
  const size = (line: string) => {
    const buf = bytes(line);
    return parseChunkSize(buf, 0, buf.indexOf(0x0a));
  };

  test("hex digits of either case, leading zeros, extensions and whitespace after the size", () => {
    expect(size("1a\r\n")).toBe(26);
    expect(size("1A\n")).toBe(26);
    expect(size("0\r\n")).toBe(0);
    expect(size("0000000000000000000000ff\r\n")).toBe(255);
    expect(size("10;name=value\r\n")).toBe(16);
    expect(size("10 ;ext\r\n")).toBe(16);
    expect(size("10\t\r\n")).toBe(16);
    expect(size("fffffffffffff\r\n")).toBe(0xfffffffffffff);
  });

  test("anything else is not a chunk-size line", () => {
    for (const line of ["\r\n", ";ext\r\n", "g\r\n", "1g\r\n", "-1\r\n", " 1\r\n", "10000000000000\r\n"]) {
      expect([line, size(line)]).toEqual([line, BAD_CHUNK_SIZE]);
    }
  });
});
