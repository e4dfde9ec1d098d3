// What first bytes say a stream is: a table of cases, and the same facts held against the
// kernel's classify() in bpf/tapwire.bpf.c, so the two cannot drift apart.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { H2_PREFACE, HTTP1_METHODS, isHttp1RequestStart, isHttp1ResponseStart, isRedisCommandStart, isTlsRecord, looksLikeH2Frame, looksLikeWebSocketFrames, startsWithH2Preface } from "../../../src/protocols/sniff.ts";

const b = (s: string | number[]) => (typeof s === "string" ? Uint8Array.from(s, (c) => c.charCodeAt(0)) : new Uint8Array(s));

describe("first bytes", () => {
  test.each([
    // [bytes, request, response, h2 preface, h2 frame, tls]
    ["GET / HTTP/1.1\r\n", true, false, false, false, false],
    ["PATCH /x HTTP/1.1", true, false, false, false, false],
    ["OPTIONS * HTTP/1.1", true, false, false, false, false],
    ["GETX / HTTP/1.1", false, false, false, false, false],
    ["get / HTTP/1.1", false, false, false, false, false],
    ["PROPFIND / HTTP/1.1", false, false, false, false, false],
    ["HTTP/1.1 200 OK\r\n", false, true, false, false, false],
    ["HTTP/2 200", false, false, false, false, false],
    [H2_PREFACE, false, false, true, false, false],
    ["PRI *", false, false, true, false, false],
    ["PRI ", false, false, false, false, false],
    ["PRI * HTTP/1.1", false, false, false, false, false],
    [[0, 0, 0, 4, 0, 0, 0, 0, 0], false, false, false, true, false],
    [[0, 0, 8, 1, 4, 0x80, 0, 0, 1], false, false, false, false, false],
    [[0, 0, 0, 10, 0, 0, 0, 0, 0], false, false, false, false, false],
    [[0x16, 0x03, 0x01, 0x02, 0x00], false, false, false, false, true],
    [[0x16, 0x03, 0x05], false, false, false, false, false],
    [[0x17, 0x03, 0x03], false, false, false, false, false],
  ] as [string | number[], boolean, boolean, boolean, boolean, boolean][])("%p", (bytes, request, response, preface, frame, tls) => {
    const x = b(bytes);
    expect([isHttp1RequestStart(x), isHttp1ResponseStart(x), startsWithH2Preface(x), looksLikeH2Frame(x), isTlsRecord(x)]).toEqual([request, response, preface, frame, tls]);
  });
});

describe("WebSocket frames, on a connection joined after its upgrade", () => {
  test.each([
    // [bytes, whole frames]
    [[0x81, 0x02, 0x68, 0x69], true], // text "hi"
    [[0x82, 0x80, 1, 2, 3, 4], true], // an empty binary frame, masked
    [[0x89, 0x00, 0x8a, 0x00], true], // ping, then pong
    [[0x88, 0x02, 0x03, 0xe8], true], // close 1000
    [[0x81, 0x03, 0x68, 0x69], false], // cut
    [[0x01, 0x01, 0x68], false], // not final: a fragment's start
    [[0xc1, 0x01, 0x68], true], // RSV1: a compressed message (permessage-deflate)
    [[0xa1, 0x01, 0x68], false], // RSV2: no extension here uses it
    [[0x83, 0x00], false], // opcode 3 is reserved
    [[0x89, 0x7e, 0x00, 0x7e, ...new Array(126).fill(0)], false], // a ping longer than 125
    [[0x16, 0x03, 0x01, 0x00, 0x00], false], // a TLS record
  ] as [number[], boolean][])("%p", (bytes, frames) => {
    expect(looksLikeWebSocketFrames(b(bytes))).toBe(frames);
  });
});

describe("Redis commands", () => {
  test.each([
    ["*1\r\n$4\r\nPING\r\n", true],
    ["*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n", true],
    ["*12\r\n$4\r\nMSET", true],
    ["*999\r\n$3", true],
    ["*1000\r\n$3", true], // MSET of 500 pairs
    ["*9999\r\n$3", true],
    ["*10000\r\n$3", false], // more than 9999 elements: not taken for a command's start
    ["*0\r\n", false],
    ["*-1\r\n", false], // a null array: a reply
    ["*2\r\n:1\r\n:2\r\n", false], // an array of integers: a reply
    ["+OK\r\n", false],
    ["$5\r\nhello\r\n", false],
    ["PING\r\n", false], // inline commands (telnet) are not read
    ["*1\r\n", false], // cut before the element
  ] as [string, boolean][])("%p", (bytes, command) => {
    expect(isRedisCommandStart(b(bytes))).toBe(command);
  });
});

describe("the kernel's classify() states the same facts", () => {
  const c = readFileSync(resolve(import.meta.dir, "../../../bpf/tapwire.bpf.c"), "utf8");
  const classify = c.slice(c.indexOf("static __always_inline __u8 classify("), c.indexOf("static __always_inline bool h2_frame_like("));

  test("the HTTP/1 methods", () => {
    const inC = [...classify.matchAll(/starts_with\(b, "([A-Z]+) ", \d+\)/g)].map((m) => m[1]).sort();
    expect(inC).toEqual([...HTTP1_METHODS].sort());
  });

  test("WebSocket frames: FIN with RSV2/RSV3 clear, the five opcodes, control frames at most 125 bytes", () => {
    const ws = c.slice(c.indexOf("static __always_inline bool ws_frame_like("), c.indexOf("static __always_inline __u32 read_prefix("));
    expect(ws).toContain("(b0 & 0xb0) != 0x80");
    expect(ws).toContain("opcode == 1 || opcode == 2 || (opcode >= 8 && opcode <= 10)");
    expect(ws).toContain("opcode >= 8 && len > 125");
    const sniff = readFileSync(resolve(import.meta.dir, "../../../src/protocols/sniff.ts"), "utf8");
    const ts = sniff.slice(sniff.indexOf("export function looksLikeWebSocketFrames("));
    expect(ts).toContain("(b0 & 0xb0) !== 0x80");
    expect(ts).toContain("opcode === 1 || opcode === 2 || opcode === 8 || opcode === 9 || opcode === 10");
    expect(ts).toContain("opcode >= 8 && len > 125");
  });

  test("a Redis command: '*', 1-4 digits (not led by 0), CRLF, '$'", () => {
    expect(classify).toContain("b[0] == '*' && b[1] >= '1' && b[1] <= '9'");
    expect(classify).toContain("b[2] == '\\r' && b[3] == '\\n' && b[4] == '$'");
    expect(classify).toContain("is_digit(b[2]) && b[3] == '\\r' && b[4] == '\\n' && b[5] == '$'");
    expect(classify).toContain("is_digit(b[2]) && is_digit(b[3]) && b[4] == '\\r' && b[5] == '\\n' && b[6] == '$'");
    expect(classify).toContain("is_digit(b[2]) && is_digit(b[3]) && is_digit(b[4]) && b[5] == '\\r' && b[6] == '\\n' && b[7] == '$'");
  });

  test("the HTTP/2 preface, the status line and TLS records", () => {
    expect(classify).toContain(`starts_with(b, "${H2_PREFACE.slice(0, 14)}", 14)`);
    expect(classify).toContain('starts_with(b, "HTTP/1.", 7)');
    expect(classify).toContain("b[0] == 0x16 && b[1] == 0x03 && b[2] <= 0x04");
  });
});
