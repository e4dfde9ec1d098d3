// The bytes the HTTP/1 parser holds between pushes (pending-bytes.ts): how much of a push
// completes a waiting unit, within its bound, and the timestamps of held bytes as they are read.
import { describe, expect, test } from "bun:test";
import { PendingBytes } from "../../../../src/protocols/http1/pending-bytes.ts";
import { bytes, latin1 } from "./harness.ts";

function holding(s: string, ts = 1): PendingBytes {
  const p = new PendingBytes();
  p.append(bytes(s), 0, s.length, ts);
  return p;
}

describe("how much to hold", () => {
  test("a line: up to its LF, ready; without one, all of it, not ready", () => {
    const p = holding("3f");
    expect(p.cutLine(bytes("xx;ext\r\nrest"), 2, 4096, false)).toBe(8);
    expect(p.ready).toBe(true);
    expect(p.cutLine(bytes("no line end"), 0, 4096, false)).toBe(11);
    expect(p.ready).toBe(false);
  });

  test("a line at its bound: cut there, and ready so that reading it can fail", () => {
    const p = holding("x".repeat(10));
    expect(p.cutLine(bytes("y".repeat(20)), 0, 16, false)).toBe(6);
    expect(p.ready).toBe(true);
    // Over the bound already: one byte at a time.
    const over = holding("x".repeat(20));
    expect(over.cutLine(bytes("yyyy"), 0, 16, false)).toBe(1);
  });

  test("eager (between messages): ready at once, so garbage is dropped as it comes", () => {
    expect(holding("GE").cutLine(bytes("T /"), 0, 8192, true)).toBe(3);
    const p = holding("GE");
    p.cutLine(bytes("T /"), 0, 8192, true);
    expect(p.ready).toBe(true);
  });

  test("a head: up to its blank line, wherever the line ends fall", () => {
    const data = bytes("Host: h\r\n\r\nbody");
    expect(holding("GET / HTTP/1.1\r\n").cutHead(data, 0, 65536)).toBe(11);
    // The blank line began in the held bytes: "\r\n" held, "\r\n" pushed; "\r\n\r" held, "\n" pushed; "\n" held, "\n" pushed.
    expect(holding("GET / HTTP/1.1\r\nA: b\r\n").cutHead(bytes("\r\nbody"), 0, 65536)).toBe(2);
    expect(holding("GET / HTTP/1.1\r\nA: b\r\n\r").cutHead(bytes("\nbody"), 0, 65536)).toBe(1);
    expect(holding("GET / HTTP/1.1\nA: b\n").cutHead(bytes("\nbody"), 0, 65536)).toBe(1);
    const p = holding("GET / HTTP/1.1\r\n");
    expect(p.cutHead(bytes("A: b\r\n"), 0, 65536)).toBe(6);
    expect(p.ready).toBe(false);
  });

  test("a chunk's CR: one more byte", () => {
    const p = holding("\r");
    expect(p.cutByte(5)).toBe(6);
    expect(p.ready).toBe(true);
  });
});

describe("held bytes and their timestamps", () => {
  test("each held byte has the timestamp of the push it came in", () => {
    const p = new PendingBytes();
    p.append(bytes("aaa"), 0, 3, 10);
    p.append(bytes("bb"), 0, 2, 10); // same push time: no new mark
    p.append(bytes("xccc"), 1, 4, 20);
    expect(latin1(p.view())).toBe("aaabbccc");
    expect([0, 4, 5, 7].map((at) => p.tsAt(at, -1))).toEqual([10, 10, 20, 20]);
  });

  test("dropping what was read moves the rest, and its timestamps, to the front", () => {
    const p = new PendingBytes();
    p.append(bytes("aaa"), 0, 3, 10);
    p.append(bytes("bbb"), 0, 3, 20);
    p.append(bytes("ccc"), 0, 3, 30);
    p.drop(4);
    expect(latin1(p.view())).toBe("bbccc");
    expect([0, 1, 2, 4].map((at) => p.tsAt(at, -1))).toEqual([20, 20, 30, 30]);
    p.drop(5);
    expect(p.length).toBe(0);
    expect(p.tsAt(0, -1)).toBe(-1);
  });

  test("replace holds only the new bytes; clear lets a large buffer go", () => {
    const p = holding("old", 1);
    p.replace(bytes("..new"), 2, 5, 7);
    expect(latin1(p.view())).toBe("new");
    expect(p.tsAt(0, -1)).toBe(7);
    p.append(bytes("x".repeat(10000)), 0, 10000, 8);
    p.clear();
    expect(p.length).toBe(0);
    expect(p.bytes.length).toBe(0);
    const small = holding("small");
    const buffer = small.bytes;
    small.clear();
    expect(small.bytes).toBe(buffer);
  });
});
