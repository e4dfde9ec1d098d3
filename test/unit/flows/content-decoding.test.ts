// Content-Encoding decoding on its own, and the node:zlib behaviour it relies on in Bun.
import { describe, expect, test } from "bun:test";
import * as zlib from "node:zlib";
import { decodeContent, parseContentEncoding } from "../../../src/flows/content-decoding.ts";

const plain = Buffer.from(Array.from({ length: 4000 }, (_, i) => `${i} tapwire ${(i * 31) % 97}`).join("\n"));
const str = (b: Uint8Array) => Buffer.from(b).toString("latin1");

describe("what tapwire relies on in Bun's node:zlib", () => {
  test.each([
    ["gzip", zlib.gzipSync, zlib.gunzipSync, zlib.constants.Z_SYNC_FLUSH],
    ["deflate", zlib.deflateSync, zlib.inflateSync, zlib.constants.Z_SYNC_FLUSH],
    ["raw deflate", zlib.deflateRawSync, zlib.inflateRawSync, zlib.constants.Z_SYNC_FLUSH],
    ["br", zlib.brotliCompressSync, zlib.brotliDecompressSync, zlib.constants.BROTLI_OPERATION_FLUSH],
  ] as const)("%s: a flushing finishFlush decodes a prefix; maxOutputLength throws ERR_BUFFER_TOO_LARGE", (_, compress, decompress, flush) => {
    const encoded = compress(plain);
    const half = encoded.subarray(0, encoded.length >> 1);
    // Without the flushing finishFlush a prefix is an error...
    expect(() => decompress(half)).toThrow();
    // ...with it, it decodes as far as it goes.
    const out = decompress(half, { finishFlush: flush });
    expect(out.length).toBeGreaterThan(0);
    expect(plain.subarray(0, out.length).equals(out)).toBe(true);
    // maxOutputLength does not truncate: it throws, with a code to recognise it by.
    let code: unknown;
    try {
      decompress(encoded, { finishFlush: flush, maxOutputLength: 100 });
    } catch (e) {
      code = (e as { code?: unknown }).code;
    }
    expect(code).toBe("ERR_BUFFER_TOO_LARGE");
    expect(decompress(encoded, { finishFlush: flush, maxOutputLength: plain.length }).length).toBe(plain.length);
  });
});

describe("parseContentEncoding", () => {
  test.each([
    ["gzip", ["gzip"], ""],
    ["x-gzip", ["gzip"], ""],
    [" Deflate ", ["deflate"], ""],
    ["gzip, br", ["gzip", "br"], ""],
    ["identity", [], ""],
    ["", [], ""],
    ["gzip,,identity , br", ["gzip", "br"], ""],
    ["gzip, zstd", ["gzip"], "zstd"],
    ["compress", [], "compress"],
  ])("%j", (value, codings, unsupported) => {
    expect(parseContentEncoding(value)).toEqual({ codings: codings as never, unsupported });
  });
});

describe("decodeContent", () => {
  test("each coding, and stacked codings undone last to first", () => {
    expect(str(decodeContent("gzip", zlib.gzipSync(plain), 1 << 20).body)).toBe(str(plain));
    expect(str(decodeContent("deflate", zlib.deflateSync(plain), 1 << 20).body)).toBe(str(plain));
    expect(str(decodeContent("deflate", zlib.deflateRawSync(plain), 1 << 20).body)).toBe(str(plain));
    expect(str(decodeContent("br", zlib.brotliCompressSync(plain), 1 << 20).body)).toBe(str(plain));
    const stacked = zlib.gzipSync(zlib.deflateSync(zlib.brotliCompressSync(plain)));
    const d = decodeContent("br, deflate, gzip", stacked, 1 << 20);
    expect([str(d.body), d.encoding, d.error, d.capped]).toEqual([str(plain), "br, deflate, gzip", "", false]);
  });

  test("the body is a plain Uint8Array", () => {
    expect(decodeContent("gzip", zlib.gzipSync(plain), 1 << 20).body.constructor).toBe(Uint8Array);
  });

  test("output is capped at maxOutput, close to it, as a prefix of the whole", () => {
    const encodings: [string, Uint8Array][] = [
      ["gzip", zlib.gzipSync(plain)],
      ["br", zlib.brotliCompressSync(plain)],
      ["deflate", zlib.deflateRawSync(plain)],
    ];
    for (const max of [1, 10, 1000, 50000, plain.length - 1]) {
      for (const [coding, encoded] of encodings) {
        const d = decodeContent(coding, encoded, max);
        expect([d.capped, d.error, d.encoding]).toEqual([true, "", coding]);
        expect(d.body.length).toBeLessThanOrEqual(max);
        expect(plain.subarray(0, d.body.length).equals(Buffer.from(d.body))).toBe(true);
      }
      const d = decodeContent("gzip", zlib.gzipSync(plain), max);
      expect(d.body.length).toBeGreaterThanOrEqual(max - (max >> 6) - 1);
    }
  });

  test("a large highly compressible body is capped without decoding it all, and quickly", () => {
    const big = Buffer.alloc(64 * 1024 * 1024, 0x61);
    const encoded = zlib.gzipSync(big);
    const t0 = performance.now();
    const d = decodeContent("gzip", encoded, 1 << 20);
    const ms = performance.now() - t0;
    expect(d.capped).toBe(true);
    expect(d.body.length).toBeLessThanOrEqual(1 << 20);
    expect(d.body.length).toBeGreaterThan((1 << 20) * 0.95);
    expect(ms).toBeLessThan(2000);
  });

  test("errors leave the input as it is, with the reason", () => {
    const input = new Uint8Array([1, 2, 3, 4]);
    const d = decodeContent("gzip", input, 100);
    expect(d.body).toBe(input);
    expect(d.encoding).toBe("");
    expect(d.error).toStartWith("gzip: ");
    expect(decodeContent("br", input, 100).error).toStartWith("br: ");
    expect(decodeContent("zstd", input, 100)).toEqual({ body: input, encoding: "", error: 'unsupported content coding "zstd"', capped: false });
  });

  test("nothing to do: identity, no coding, empty input", () => {
    const input = new Uint8Array([1, 2, 3]);
    expect(decodeContent("identity", input, 100)).toEqual({ body: input, encoding: "", error: "", capped: false });
    expect(decodeContent("gzip", new Uint8Array(0), 100).encoding).toBe("");
  });

  test("a part (whole = false) decodes as far as it goes, even to nothing; as a whole body it is an error", () => {
    const encoded = zlib.gzipSync(plain);
    const part = decodeContent("gzip", encoded.subarray(0, 1000), 1 << 20, false);
    expect([part.error, part.encoding, part.capped]).toEqual(["", "gzip", false]);
    expect(plain.subarray(0, part.body.length).equals(Buffer.from(part.body))).toBe(true);
    const header = decodeContent("gzip", encoded.subarray(0, 6), 100, false);
    expect([header.body.length, header.error, header.encoding]).toEqual([0, "", "gzip"]);
    const cutWhole = decodeContent("gzip", encoded.subarray(0, 1000), 1 << 20, true);
    expect(cutWhole.error).toStartWith("gzip: ");
    expect(cutWhole.body.length).toBe(1000);
  });
});
