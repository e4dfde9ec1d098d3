// The HPACK decoder: every example of RFC 7541 Appendix C with the dynamic table checked after
// each block, the Huffman code against the RFC and against libnghttp2's copy, blocks written by
// a real encoder (Bun's node:http2 client, recorded off the wire), malformed input (always an
// HpackError), fuzzing, a ring-buffer model check, and the joined-mid-stream mode.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { existsSync, readFileSync } from "node:fs";
import http2 from "node:http2";
import net from "node:net";
import {
  createHpackDecoder,
  decodeInteger,
  HpackError,
  HUFFMAN_CODE_LENGTHS,
  HUFFMAN_CODES,
  type HeaderField,
  type HpackDecoder,
} from "../../../../src/protocols/http2/hpack.ts";

const hex = (s: string) => new Uint8Array(Buffer.from(s.replace(/\s+/g, ""), "hex"));
const pairs = (fields: HeaderField[]) => fields.map((f) => [f.name, f.value]);

/** The dynamic table, newest first, read through indexed representations (they change nothing). */
function table(d: HpackDecoder): string[][] {
  const out: string[][] = [];
  for (let i = 0; i < d.tableLength; i++) {
    const [f] = d.decode(block(indexed(62 + i)));
    out.push([f!.name, f!.value]);
  }
  return out;
}

// --- A small encoder for the blocks tests need to control ---------------------------------------

function int(prefixBits: number, flags: number, n: number): number[] {
  const max = (1 << prefixBits) - 1;
  if (n < max) return [flags | n];
  const out = [flags | max];
  for (n -= max; n >= 128; n = Math.floor(n / 128)) out.push((n % 128) | 0x80);
  out.push(n);
  return out;
}

function huffman(s: string): number[] {
  const out: number[] = [];
  let acc = 0; // pending bits, fewer than 8 after each symbol is flushed
  let bits = 0;
  for (const octet of Buffer.from(s, "latin1")) {
    const len = HUFFMAN_CODE_LENGTHS[octet]!;
    const code = HUFFMAN_CODES[octet]!;
    for (let b = len - 1; b >= 0; b--) {
      acc = (acc << 1) | (Math.floor(code / 2 ** b) & 1);
      if (++bits === 8) {
        out.push(acc);
        acc = bits = 0;
      }
    }
  }
  if (bits > 0) out.push(((acc << (8 - bits)) | (0xff >> bits)) & 0xff); // pad with EOS's ones
  return out;
}

function str(s: string, huff = false): number[] {
  if (huff) {
    const h = huffman(s);
    return [...int(7, 0x80, h.length), ...h];
  }
  const b = [...Buffer.from(s, "latin1")];
  return [...int(7, 0, b.length), ...b];
}

const indexed = (i: number) => int(7, 0x80, i);
type Kind = "incremental" | "without" | "never";
const LITERAL: Record<Kind, [number, number]> = { incremental: [6, 0x40], without: [4, 0x00], never: [4, 0x10] };
function literal(kind: Kind, name: string | number, value: string, huff = false): number[] {
  const [prefix, flags] = LITERAL[kind];
  return typeof name === "number" ? [...int(prefix, flags, name), ...str(value, huff)] : [...int(prefix, flags, 0), ...str(name, huff), ...str(value, huff)];
}
const sizeUpdate = (n: number) => int(5, 0x20, n);
const block = (...parts: number[][]) => new Uint8Array(parts.flat());

// --- RFC 7541 Appendix C -------------------------------------------------------------------------

describe("RFC 7541 Appendix C", () => {
  test("C.1 integers: 10 and 1337 with a 5-bit prefix, 42 at an octet boundary", () => {
    expect(decodeInteger(hex("0a"), 0, 5)).toEqual({ value: 10, next: 1 });
    expect(decodeInteger(hex("ea"), 0, 5)).toEqual({ value: 10, next: 1 }); // bits above the prefix are not the integer's
    expect(decodeInteger(hex("1f9a0a"), 0, 5)).toEqual({ value: 1337, next: 3 });
    expect(decodeInteger(hex("ff2a"), 1, 8)).toEqual({ value: 42, next: 2 });
  });

  test("C.2.1 literal with indexing", () => {
    const d = createHpackDecoder();
    expect(d.decode(hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572"))).toEqual([{ name: "custom-key", value: "custom-header" }]);
    expect(table(d)).toEqual([["custom-key", "custom-header"]]);
    expect(d.tableSize).toBe(55);
  });

  test("C.2.2 literal without indexing", () => {
    const d = createHpackDecoder();
    expect(d.decode(hex("040c 2f73 616d 706c 652f 7061 7468"))).toEqual([{ name: ":path", value: "/sample/path" }]);
    expect([d.tableLength, d.tableSize]).toEqual([0, 0]);
  });

  test("C.2.3 literal never indexed", () => {
    const d = createHpackDecoder();
    expect(d.decode(hex("1008 7061 7373 776f 7264 0673 6563 7265 74"))).toEqual([{ name: "password", value: "secret", neverIndexed: true }]);
    expect([d.tableLength, d.tableSize]).toEqual([0, 0]);
  });

  test("C.2.4 indexed field", () => {
    const d = createHpackDecoder();
    expect(d.decode(hex("82"))).toEqual([{ name: ":method", value: "GET" }]);
    expect([d.tableLength, d.tableSize]).toEqual([0, 0]);
  });

  const requests = [
    [[":method", "GET"], [":scheme", "http"], [":path", "/"], [":authority", "www.example.com"]],
    [[":method", "GET"], [":scheme", "http"], [":path", "/"], [":authority", "www.example.com"], ["cache-control", "no-cache"]],
    [[":method", "GET"], [":scheme", "https"], [":path", "/index.html"], [":authority", "www.example.com"], ["custom-key", "custom-value"]],
  ];
  const requestTables = [
    [[":authority", "www.example.com"]],
    [["cache-control", "no-cache"], [":authority", "www.example.com"]],
    [["custom-key", "custom-value"], ["cache-control", "no-cache"], [":authority", "www.example.com"]],
  ];
  const requestSizes = [57, 110, 164];

  function run(d: HpackDecoder, blocks: string[], fields: string[][][], tables: string[][][], sizes: number[]) {
    blocks.forEach((b, i) => {
      expect(pairs(d.decode(hex(b)))).toEqual(fields[i]!);
      expect(table(d)).toEqual(tables[i]!);
      expect(d.tableSize).toBe(sizes[i]!);
    });
  }

  test("C.3 three requests without Huffman, one decoder", () => {
    const blocks = [
      "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
      "8286 84be 5808 6e6f 2d63 6163 6865",
      "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
    ];
    run(createHpackDecoder(), blocks, requests, requestTables, requestSizes);
  });

  test("C.4 the same requests with Huffman", () => {
    const blocks = [
      "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
      "8286 84be 5886 a8eb 1064 9cbf",
      "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
    ];
    run(createHpackDecoder(), blocks, requests, requestTables, requestSizes);
  });

  const date1 = "Mon, 21 Oct 2013 20:13:21 GMT";
  const date2 = "Mon, 21 Oct 2013 20:13:22 GMT";
  const cookie = "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1";
  const responses = [
    [[":status", "302"], ["cache-control", "private"], ["date", date1], ["location", "https://www.example.com"]],
    [[":status", "307"], ["cache-control", "private"], ["date", date1], ["location", "https://www.example.com"]],
    [[":status", "200"], ["cache-control", "private"], ["date", date2], ["location", "https://www.example.com"], ["content-encoding", "gzip"], ["set-cookie", cookie]],
  ];
  // 256 octets: the second response evicts ":status: 302", the third evicts three more.
  const responseTables = [
    [["location", "https://www.example.com"], ["date", date1], ["cache-control", "private"], [":status", "302"]],
    [[":status", "307"], ["location", "https://www.example.com"], ["date", date1], ["cache-control", "private"]],
    [["set-cookie", cookie], ["content-encoding", "gzip"], ["date", date2]],
  ];
  const responseSizes = [222, 222, 215];

  test("C.5 three responses without Huffman, table of 256 octets: evictions", () => {
    const blocks = [
      "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
      "4803 3330 37c1 c0bf",
      "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31",
    ];
    run(createHpackDecoder({ maxTableSize: 256 }), blocks, responses, responseTables, responseSizes);
  });

  test("C.6 the same responses with Huffman", () => {
    const blocks = [
      "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
      "4883 640e ffc1 c0bf",
      "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07",
    ];
    run(createHpackDecoder({ maxTableSize: 256 }), blocks, responses, responseTables, responseSizes);
  });
});

// --- Integers ------------------------------------------------------------------------------------

describe("integers (§5.1)", () => {
  test("the largest accepted value is 2^31 - 1; one more, or a 7th continuation byte, is an error", () => {
    const max = 2 ** 31 - 1;
    expect(decodeInteger(new Uint8Array(int(7, 0, max)), 0, 7)).toEqual({ value: max, next: 6 });
    expect(() => decodeInteger(new Uint8Array(int(7, 0, max + 1)), 0, 7)).toThrow(HpackError);
    expect(() => decodeInteger(hex("ff ff ff ff ff 0f"), 0, 7)).toThrow(HpackError); // 2^32 + 126
    // Redundant zero groups are valid, up to 6 continuation bytes.
    expect(decodeInteger(hex("ff 80 80 80 80 80 00"), 0, 7)).toEqual({ value: 127, next: 7 });
    expect(() => decodeInteger(hex("ff 80 80 80 80 80 80 00"), 0, 7)).toThrow(HpackError);
  });

  test("truncated integers", () => {
    expect(() => decodeInteger(hex(""), 0, 7)).toThrow(HpackError);
    expect(() => decodeInteger(hex("1f"), 0, 5)).toThrow(HpackError);
    expect(() => decodeInteger(hex("1f 9a"), 0, 5)).toThrow(HpackError);
  });
});

// --- Huffman -------------------------------------------------------------------------------------

describe("Huffman code (§5.2, Appendix B)", () => {
  test("codes as printed in RFC 7541 Appendix B, a sample from every length", () => {
    // [symbol, code (right-aligned, hex as printed), length]
    const spec: [number, number, number][] = [
      [0, 0x1ff8, 13], [1, 0x7fffd8, 23], [2, 0xfffffe2, 28], [9, 0xffffea, 24], [10, 0x3ffffffc, 30], [13, 0x3ffffffd, 30],
      [22, 0x3ffffffe, 30], [31, 0xffffffb, 28], [32, 0x14, 6], [33, 0x3f8, 10], [35, 0xffa, 12], [36, 0x1ff9, 13], [38, 0xf8, 8],
      [39, 0x7fa, 11], [48, 0x0, 5], [58, 0x5c, 7], [60, 0x7ffc, 15], [64, 0x1ffa, 13], [88, 0xfc, 8], [92, 0x7fff0, 19],
      [94, 0x3ffc, 14], [96, 0x7ffd, 15], [116, 0x9, 5], [122, 0x7b, 7], [123, 0x7ffe, 15], [124, 0x7fc, 11], [126, 0x1ffd, 13],
      [127, 0xffffffc, 28], [128, 0xfffe6, 20], [129, 0x3fffd2, 22], [153, 0x1fffdc, 21], [195, 0x7fff1, 19], [199, 0x1ffffec, 25],
      [203, 0x7ffffde, 27], [220, 0xffffffd, 28], [249, 0xffffffe, 28], [254, 0x7fffff0, 27], [255, 0x3ffffee, 26], [256, 0x3fffffff, 30],
    ];
    for (const [sym, code, len] of spec) expect([sym, HUFFMAN_CODES[sym], HUFFMAN_CODE_LENGTHS[sym]]).toEqual([sym, code, len]);
  });

  // libnghttp2 carries the table as {bit count, code aligned to the top of a u32} per symbol.
  const libnghttp2 = "/usr/lib/x86_64-linux-gnu/libnghttp2.so.14";
  test.skipIf(!existsSync(libnghttp2))("all 257 codes equal libnghttp2's table", () => {
    const lib = readFileSync(libnghttp2);
    const entry = (sym: number) => {
      const e = Buffer.alloc(8);
      e.writeUInt32LE(HUFFMAN_CODE_LENGTHS[sym]!, 0);
      e.writeUInt32LE(HUFFMAN_CODES[sym]! * 2 ** (32 - HUFFMAN_CODE_LENGTHS[sym]!), 4);
      return e;
    };
    const start = lib.indexOf(Buffer.concat([entry(0), entry(1), entry(2)]));
    expect(start).toBeGreaterThan(0);
    const theirs = lib.subarray(start, start + 257 * 8);
    for (let sym = 0; sym <= 256; sym++) expect([sym, theirs.subarray(sym * 8, sym * 8 + 8).toString("hex")]).toEqual([sym, entry(sym).toString("hex")]);
  });

  test("every octet value round-trips, alone and all together", () => {
    const all = String.fromCharCode(...Array.from({ length: 256 }, (_, i) => i));
    const d = createHpackDecoder();
    expect(d.decode(block(literal("without", 1, all, true)))).toEqual([{ name: ":authority", value: all }]);
    for (let i = 0; i < 256; i++) {
      const s = String.fromCharCode(i).repeat(1 + (i % 9)); // every padding length shows up
      expect(d.decode(block(literal("without", "x", s, true)))).toEqual([{ name: "x", value: s }]);
    }
    expect(d.decode(block(literal("without", 1, "", true)))).toEqual([{ name: ":authority", value: "" }]);
  });

  test("padding: up to 7 one bits end a string; more, or any zero bit, is an error", () => {
    const d = createHpackDecoder();
    expect(d.decode(hex("04 81 1f"))).toEqual([{ name: ":path", value: "a" }]); // 00011 + 111
    expect(d.decode(hex("04 81 07"))).toEqual([{ name: ":path", value: "0" }]); // 00000 + 111
    expect(d.decode(hex("04 82 f8 07"))).toEqual([{ name: ":path", value: "&0" }]); // 11111000 00000 + 111
    expect(() => createHpackDecoder().decode(hex("04 81 18"))).toThrow(HpackError); // 00011 + 000
    expect(() => createHpackDecoder().decode(hex("04 81 1e"))).toThrow(HpackError); // 00011 + 110
    expect(() => createHpackDecoder().decode(hex("04 82 1f ff"))).toThrow(HpackError); // 00011 + 11 ones
    expect(() => createHpackDecoder().decode(hex("04 81 ff"))).toThrow(HpackError); // 8 ones, no symbol
  });

  test("EOS inside a string is an error", () => {
    expect(() => createHpackDecoder().decode(hex("04 84 ff ff ff ff"))).toThrow(HpackError); // EOS + 2 ones
    // 'a' (00011), then EOS (30 ones), then 5 ones of padding.
    expect(() => createHpackDecoder().decode(hex("04 85 1f ff ff ff ff"))).toThrow(HpackError);
  });
});

// --- Representations and the dynamic table -------------------------------------------------------

describe("representations and the dynamic table", () => {
  test("literal kinds with indexed and new names; only incremental indexing inserts", () => {
    const d = createHpackDecoder();
    const fields = d.decode(
      block(literal("incremental", 58, "agent/1"), literal("without", "x-a", "1"), literal("never", 23, "Bearer t"), literal("never", "x-b", "2"), literal("incremental", "x-c", "3", true), indexed(63), indexed(62)),
    );
    expect(fields).toEqual([
      { name: "user-agent", value: "agent/1" },
      { name: "x-a", value: "1" },
      { name: "authorization", value: "Bearer t", neverIndexed: true },
      { name: "x-b", value: "2", neverIndexed: true },
      { name: "x-c", value: "3" },
      { name: "user-agent", value: "agent/1" },
      { name: "x-c", value: "3" },
    ]);
    expect(table(d)).toEqual([["x-c", "3"], ["user-agent", "agent/1"]]);
    expect(d.tableSize).toBe(3 + 1 + 32 + (10 + 7 + 32));
  });

  test("sizes count octets: a latin1 char is one octet, whatever its code", () => {
    const d = createHpackDecoder();
    expect(d.decode(hex("40 01 78 02 e9 ff"))).toEqual([{ name: "x", value: "\u00e9\u00ff" }]);
    expect(d.tableSize).toBe(1 + 2 + 32);
  });

  test("an entry larger than the table empties it and is not added (§4.4)", () => {
    const d = createHpackDecoder({ maxTableSize: 100 });
    d.decode(block(literal("incremental", "a", "1"), literal("incremental", "b", "2")));
    expect(d.tableLength).toBe(2);
    expect(d.decode(block(literal("incremental", "big", "v".repeat(66))))).toEqual([{ name: "big", value: "v".repeat(66) }]); // 101 octets
    expect([d.tableLength, d.tableSize]).toEqual([0, 0]);
    expect(() => d.decode(block(indexed(62)))).toThrow(HpackError);
  });

  test("size updates: evict, may come twice at the start, never after a field, never above the limit", () => {
    const d = createHpackDecoder();
    d.decode(block(literal("incremental", "a", "x".repeat(40)), literal("incremental", "b", "y".repeat(40))));
    expect(d.tableSize).toBe(146);
    expect(d.decode(block(sizeUpdate(100), indexed(62)))).toEqual([{ name: "b", value: "y".repeat(40) }]);
    expect(table(d)).toEqual([["b", "y".repeat(40)]]);
    expect(d.decode(block(sizeUpdate(0), sizeUpdate(4096), indexed(2)))).toEqual([{ name: ":method", value: "GET" }]);
    expect(d.tableLength).toBe(0);
    expect(() => createHpackDecoder().decode(block(sizeUpdate(4097)))).toThrow(HpackError);
    expect(() => createHpackDecoder().decode(block(indexed(2), sizeUpdate(0)))).toThrow(HpackError);
    expect(() => createHpackDecoder().decode(block(literal("without", 1, "a"), sizeUpdate(4096)))).toThrow(HpackError);
  });

  test("setMaxTableSize moves the limit for size updates; the table grows only when the encoder says so", () => {
    const d = createHpackDecoder();
    d.setMaxTableSize(8192);
    const entries = Array.from({ length: 50 }, (_, i) => literal("incremental", `k${String(i).padStart(2, "0")}`, "v".repeat(100)));
    d.decode(block(...entries));
    expect(d.tableSize).toBeLessThanOrEqual(4096); // still 4096 until a size update
    expect(d.tableLength).toBe(Math.floor(4096 / (3 + 100 + 32)));
    // The ring grows with 30 entries in it; 50 more and the oldest go: 60 * 135 octets fit.
    d.decode(block(sizeUpdate(8192), ...entries));
    const v = "v".repeat(100);
    const name = (i: number) => `k${String(i).padStart(2, "0")}`;
    const names = [...Array.from({ length: 50 }, (_, i) => name(49 - i)), ...Array.from({ length: 10 }, (_, i) => name(49 - i))];
    expect(table(d)).toEqual(names.map((n) => [n, v]));
    expect(d.tableSize).toBe(60 * 135);
    d.setMaxTableSize(1000);
    expect(() => d.decode(block(sizeUpdate(1001)))).toThrow(HpackError);
    const e = createHpackDecoder({ maxTableSize: 1000 });
    e.decode(block(sizeUpdate(1000)));
    expect(() => e.decode(block(sizeUpdate(1001)))).toThrow(HpackError);
    // A huge limit and table cost nothing up front: the ring grows with the entries.
    const f = createHpackDecoder({ maxTableSize: 2 ** 32 - 1 });
    expect(f.decode(block(sizeUpdate(2 ** 31 - 1), literal("incremental", "a", "b"), indexed(62)))).toEqual([
      { name: "a", value: "b" },
      { name: "a", value: "b" },
    ]);
  });

  test("the table matches a plain array model across random insertions and size updates", () => {
    type Op = { update: number } | { name: string; value: string };
    const op: fc.Arbitrary<Op> = fc.oneof(
      { weight: 1, arbitrary: fc.integer({ min: 0, max: 600 }).map((update) => ({ update })) },
      { weight: 8, arbitrary: fc.record({ name: fc.string({ minLength: 1, maxLength: 8 }), value: fc.string({ maxLength: 120 }) }) },
    );
    fc.assert(
      fc.property(fc.array(fc.array(op, { maxLength: 12 }), { maxLength: 30 }), (blocks) => {
        const d = createHpackDecoder({ maxTableSize: 600 });
        let model: [string, string][] = [];
        let max = 600;
        const msize = () => model.reduce((n, [a, b]) => n + a.length + b.length + 32, 0);
        for (const ops of blocks) {
          // Size updates must lead the block: move them to the front.
          const ordered = [...ops.filter((o) => "update" in o), ...ops.filter((o) => !("update" in o))];
          const parts: number[][] = [];
          for (const o of ordered) {
            if ("update" in o) {
              parts.push(sizeUpdate(o.update));
              max = o.update;
              while (msize() > max) model.pop();
            } else {
              // Names and values as latin1: keep only chars below 256.
              const name = o.name.replace(/[^\x00-\xff]/g, "?");
              const value = o.value.replace(/[^\x00-\xff]/g, "?");
              parts.push(literal("incremental", name, value, value.length % 2 === 0));
              const esize = name.length + value.length + 32;
              if (esize > max) model = [];
              else {
                while (msize() + esize > max) model.pop();
                model.unshift([name, value]);
              }
            }
          }
          d.decode(block(...parts));
          expect(table(d)).toEqual(model);
          expect(d.tableSize).toBe(msize());
        }
      }),
      { numRuns: 300, seed: 7541 },
    );
  });
});

// --- Malformed input -----------------------------------------------------------------------------

describe("malformed blocks: HpackError, never another error", () => {
  const cases: [string, string][] = [
    ["truncated integer (indexed)", "ff"],
    ["truncated integer (continuation flag, then nothing)", "ff 80"],
    ["truncated size update", "3f"],
    ["integer overflow", "ff ff ff ff ff 0f"],
    ["integer with 7 continuation bytes", "ff 80 80 80 80 80 80 00"],
    ["index 0", "80"],
    ["index beyond the static table with an empty dynamic table", "be"],
    ["indexed name beyond the table", "7f 00 01 61"],
    ["string longer than the block", "40 0a 63 75"],
    ["block ends before the value", "40 01 61"],
    ["Huffman padding longer than 7 bits", "04 82 1f ff"],
    ["Huffman padding not all ones", "04 81 18"],
    ["EOS inside a string", "04 84 ff ff ff ff"],
    ["size update above the limit", "3f e2 1f"],
    ["size update after an indexed field", "82 20"],
    ["size update after a literal", "04 01 2f 3f e1 1f"],
  ];
  test.each(cases)("%s", (_, b) => {
    expect(() => createHpackDecoder().decode(hex(b))).toThrow(HpackError);
  });

  const valid = [
    "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
    "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
    "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
    "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07",
  ].map(hex);

  function survives(blocks: Uint8Array[], joinedMidStream: boolean): void {
    const d = createHpackDecoder({ joinedMidStream });
    for (const b of blocks) {
      try {
        for (const f of d.decode(b)) expect(typeof f.name === "string" && typeof f.value === "string").toBe(true);
      } catch (e) {
        if (!(e instanceof HpackError)) throw e;
        return; // the state is undefined after an error
      }
    }
  }

  test("random bytes: a result or HpackError", () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 200 }), { minLength: 1, maxLength: 4 }), fc.boolean(), (blocks, joined) => survives(blocks, joined)),
      { numRuns: 3000, seed: 1 },
    );
  });

  test("mutated valid blocks (changed, inserted, cut octets): a result or HpackError", () => {
    const mutation = fc.record({ at: fc.nat(), octet: fc.integer({ min: 0, max: 255 }), how: fc.constantFrom("set", "insert", "cut", "xor") });
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(valid.length - 1), fc.array(mutation, { maxLength: 3 })), { minLength: 1, maxLength: 4 }), fc.boolean(), (picks, joined) => {
        const blocks = picks.map(([i, muts]) => {
          let b = [...valid[i]!];
          for (const m of muts) {
            const at = m.at % (b.length + 1);
            if (m.how === "set") b[at % b.length] = m.octet;
            else if (m.how === "xor") b[at % b.length]! ^= 1 << (m.octet & 7);
            else if (m.how === "insert") b.splice(at, 0, m.octet);
            else b = b.slice(0, at);
          }
          return new Uint8Array(b);
        });
        survives(blocks, joined);
      }),
      { numRuns: 3000, seed: 2 },
    );
  });
});

// --- Joined mid-stream ---------------------------------------------------------------------------

describe("joined mid-stream", () => {
  test("references past the known entries are unknown; own insertions are found at 62 and shift", () => {
    const d = createHpackDecoder({ joinedMidStream: true });
    expect(d.decode(block(indexed(2), indexed(62), indexed(100_000), literal("without", 70, "v"), literal("never", 64, "s")))).toEqual([
      { name: ":method", value: "GET" },
      { name: "", value: "", unknown: "both" },
      { name: "", value: "", unknown: "both" },
      { name: "", value: "v", unknown: "name" },
      { name: "", value: "s", neverIndexed: true, unknown: "name" },
    ]);
    expect(d.tableLength).toBe(0);

    // x-one goes in at 62; then an unknown-named entry (its name at 63 is an older, unseen one) at 62.
    expect(d.decode(block(literal("incremental", "x-one", "1"), literal("incremental", 63, "w"), indexed(62), indexed(63), indexed(64)))).toEqual([
      { name: "x-one", value: "1" },
      { name: "", value: "w", unknown: "name" },
      { name: "", value: "w", unknown: "name" },
      { name: "x-one", value: "1" },
      { name: "", value: "", unknown: "both" },
    ]);
    expect(d.tableLength).toBe(2);
    expect(d.tableSize).toBe(5 + 1 + 32 + (1 + 32)); // the unknown name counts as 0 octets (a lower bound)

    // A new entry shifts both; a reference to the unknown-named one still says so.
    expect(d.decode(block(literal("incremental", 62, "z"), indexed(62), indexed(63), indexed(64), indexed(65)))).toEqual([
      { name: "", value: "z", unknown: "name" },
      { name: "", value: "z", unknown: "name" },
      { name: "", value: "w", unknown: "name" },
      { name: "x-one", value: "1" },
      { name: "", value: "", unknown: "both" },
    ]);
  });

  test("malformed input still throws in this mode", () => {
    expect(() => createHpackDecoder({ joinedMidStream: true }).decode(hex("80"))).toThrow(HpackError);
    expect(() => createHpackDecoder({ joinedMidStream: true }).decode(hex("40 0a 63 75"))).toThrow(HpackError);
    expect(() => createHpackDecoder({ joinedMidStream: true }).decode(hex("82 20"))).toThrow(HpackError);
  });

  // The rule: in sync as soon as (known octets) + 32 > (current maximum), checked after each
  // insertion and size update. The maximum is the limit as told until a size update is seen.
  test("a size update to 0 brings the decoder in sync: past-the-end indices throw again", () => {
    const d = createHpackDecoder({ joinedMidStream: true });
    expect(d.decode(block(indexed(62)))).toEqual([{ name: "", value: "", unknown: "both" }]);
    d.decode(block(sizeUpdate(0), sizeUpdate(4096), literal("incremental", "x", "1")));
    expect(d.decode(block(indexed(62)))).toEqual([{ name: "x", value: "1" }]);
    expect(() => d.decode(block(indexed(63)))).toThrow(HpackError);
  });

  test("known entries leaving no room for a 32-octet one bring it in sync; one octet less does not", () => {
    // 4096 - 32 octets of known entries: an unseen empty entry of 32 octets may still be there.
    const fill = (octets: number) => literal("incremental", "f", "v".repeat(octets - 33));
    const d = createHpackDecoder({ joinedMidStream: true });
    d.decode(block(fill(2000), fill(2064)));
    expect([d.tableSize, d.tableLength]).toEqual([4064, 2]);
    expect(d.decode(block(indexed(64)))).toEqual([{ name: "", value: "", unknown: "both" }]);
    // One octet more: no room for any entry the decoder did not see.
    const e = createHpackDecoder({ joinedMidStream: true });
    e.decode(block(fill(2000), fill(2065)));
    expect([e.tableSize, e.tableLength]).toEqual([4065, 2]);
    expect(() => e.decode(block(indexed(64)))).toThrow(HpackError);
    expect(e.decode(block(indexed(62), indexed(63)))).toEqual([
      { name: "f", value: "v".repeat(2032) },
      { name: "f", value: "v".repeat(1967) },
    ]);
  });

  test("after a size update the new maximum is the bound: sync once known entries fill it", () => {
    const d = createHpackDecoder({ joinedMidStream: true });
    d.decode(block(sizeUpdate(200), literal("incremental", "a", "x".repeat(100)))); // 133 + 32 <= 200
    expect(d.decode(block(indexed(63)))).toEqual([{ name: "", value: "", unknown: "both" }]);
    d.decode(block(literal("incremental", "b", "y".repeat(140)))); // evicts a; 173 + 32 > 200
    expect(table(d)).toEqual([["b", "y".repeat(140)]]);
    expect(() => d.decode(block(indexed(63)))).toThrow(HpackError);
  });

  test("an unknown-named insertion counts its value only, and can bring the decoder in sync", () => {
    const d = createHpackDecoder({ maxTableSize: 256, joinedMidStream: true });
    expect(d.decode(block(literal("incremental", 70, "q".repeat(200))))).toEqual([{ name: "", value: "q".repeat(200), unknown: "name" }]);
    expect(d.tableSize).toBe(232); // 232 + 32 > 256, whatever the real name's length
    expect(d.decode(block(indexed(62)))).toEqual([{ name: "", value: "q".repeat(200), unknown: "name" }]);
    expect(() => d.decode(block(indexed(63)))).toThrow(HpackError);
  });

  test("without joinedMidStream, a name index past the table is an error", () => {
    expect(() => createHpackDecoder().decode(block(literal("without", 62, "v")))).toThrow(HpackError);
  });
});

// --- A real encoder ------------------------------------------------------------------------------

interface Recording {
  /** Each request's header block, in the order the client sent (and encoded) them. */
  blocks: Uint8Array[];
  wire: Buffer;
  authority: string;
}

/** HEADERS (+ CONTINUATION) payloads from the client side of a connection, preface skipped. */
function headerBlocks(wire: Buffer): Uint8Array[] {
  const blocks: Uint8Array[] = [];
  let pending: Buffer[] | undefined;
  for (let at = 24; at + 9 <= wire.length; ) {
    const length = wire.readUIntBE(at, 3);
    const type = wire[at + 3]!;
    const flags = wire[at + 4]!;
    if (at + 9 + length > wire.length) break;
    let payload = wire.subarray(at + 9, at + 9 + length);
    at += 9 + length;
    if (type === 0x1) {
      if (flags & 0x8) payload = payload.subarray(1, payload.length - payload[0]!); // PADDED
      if (flags & 0x20) payload = payload.subarray(5); // PRIORITY
      pending = [payload];
    } else if (type === 0x9 && pending) {
      pending.push(payload);
    } else {
      continue;
    }
    if (flags & 0x4) {
      blocks.push(new Uint8Array(Buffer.concat(pending)));
      pending = undefined;
    }
  }
  return blocks;
}

/** Sends requests with Bun's node:http2 client to a server that only records what arrives. */
async function record(requests: http2.OutgoingHttpHeaders[]): Promise<Recording> {
  const chunks: Buffer[] = [];
  const server = net.createServer((socket) => {
    socket.write(Buffer.from([0, 0, 0, 0x4, 0, 0, 0, 0, 0])); // an empty SETTINGS frame
    socket.on("data", (d: Buffer) => chunks.push(d));
    socket.on("error", () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const authority = `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  const client = http2.connect(`http://${authority}`);
  client.on("error", () => {});
  try {
    for (const headers of requests) {
      const req = client.request(headers, { endStream: true });
      req.on("error", () => {});
    }
    const deadline = Date.now() + 5000;
    for (;;) {
      const wire = Buffer.concat(chunks);
      const blocks = headerBlocks(wire);
      if (blocks.length >= requests.length) return { blocks, wire, authority };
      if (Date.now() > deadline) throw new Error(`only ${blocks.length} of ${requests.length} header blocks arrived`);
      await Bun.sleep(10);
    }
  } finally {
    client.destroy();
    server.close();
  }
}

describe("blocks from a real encoder (Bun's node:http2 client)", () => {
  // Every octet a field value may hold (RFC 9110 §5.5): tab, space, printable ASCII, 0x80-0xff.
  // Zeros (5-bit codes) after each keep the Huffman form shorter, so the encoder picks it.
  const octets = (codes: number[], zeros: number) => "a" + codes.map((c) => String.fromCharCode(c) + "0".repeat(zeros)).join("");
  const printable = octets([0x09, ...Array.from({ length: 0x7f - 0x20 }, (_, i) => 0x20 + i)], 6);
  const high = octets(Array.from({ length: 128 }, (_, i) => 0x80 + i), 10);
  const userAgent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";
  const common = {
    accept: "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8",
    "accept-language": "en-US,en;q=0.5",
    "user-agent": userAgent,
  };
  const many = Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`x-bulk-${i}`, `${i}-`.padEnd(200, "abcdefghij")]));
  const requests: Record<string, string>[] = [
    { ":path": "/index.html", ...common, authorization: "Bearer abc.def.ghi", "x-secret": "s3cr3t" },
    { ":path": "/style.css", ...common, "x-request-id": "1", cookie: "session=abcdef0123456789; theme=dark" },
    { ":method": "POST", ":path": "/api/items?q=a%20b&page=2", ...common, "content-type": "application/json", "x-long": "token-".repeat(400), "x-printable": printable },
    { ":path": "/high", "x-latin1": high },
    { ":path": "/bulk", ...many },
    { ":path": "/bulk-again", ...many, ...common },
    { ":path": "/index.html", ...common, authorization: "Bearer abc.def.ghi", "x-secret": "s3cr3t" },
  ];
  // Sensitive headers: the client must send them never-indexed.
  const sensitive = new Set(["authorization", "x-secret"]);
  const withSymbols = requests.map((r) => ({ ...r, [http2.sensitiveHeaders]: [...sensitive].filter((h) => h in r) }));

  function expected(r: Record<string, string>, authority: string): HeaderField[] {
    const fields: HeaderField[] = [
      { name: ":method", value: r[":method"] ?? "GET" },
      { name: ":path", value: r[":path"]! },
      { name: ":scheme", value: "http" },
      { name: ":authority", value: authority },
    ];
    for (const [name, value] of Object.entries(r)) {
      if (name.startsWith(":")) continue;
      fields.push(sensitive.has(name) ? { name, value, neverIndexed: true } : { name, value });
    }
    return sorted(fields);
  }
  const sorted = (fields: HeaderField[]) => [...fields].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

  test("every request decodes to exactly what was sent, with one decoder across the connection", async () => {
    const rec = await record(withSymbols);
    expect(rec.blocks.length).toBe(requests.length);
    const d = createHpackDecoder();
    rec.blocks.forEach((b, i) => expect([i, sorted(d.decode(b))]).toEqual([i, expected(requests[i]!, rec.authority)]));
    // The encoder really used Huffman for the octet values and the dynamic table for repeats.
    expect(rec.wire.indexOf(Buffer.from(high, "latin1"))).toBe(-1);
    expect(rec.wire.indexOf(Buffer.from(printable, "latin1"))).toBe(-1);
    expect(rec.blocks[6]!.length).toBeLessThan(rec.blocks[0]!.length / 2);
    expect(d.tableLength).toBeGreaterThan(0);
  });

  test("joined after the first requests: known fields are right, the rest are marked, and the bulk headers resync", async () => {
    const rec = await record(withSymbols);
    const d = createHpackDecoder({ joinedMidStream: true });
    let unknown = 0;
    for (let i = 2; i < rec.blocks.length; i++) {
      const want = expected(requests[i]!, rec.authority);
      const fields = d.decode(rec.blocks[i]!);
      for (const f of fields) {
        if (f.unknown === "both") unknown++;
        else if (f.unknown === "name") {
          unknown++;
          expect(want.some((w) => w.value === f.value)).toBe(true);
        } else expect(want).toContainEqual(f);
      }
      // Request 4 inserts 30 entries of ~240 octets: more than the table holds, so from
      // then on nothing the decoder missed can be left and every field is known.
      if (i >= 5) expect([i, sorted(fields)]).toEqual([i, want]);
    }
    expect(unknown).toBeGreaterThan(0);
  });
});
