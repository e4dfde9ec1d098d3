// elfkit on damaged input: random bytes, truncation at any length, corrupted headers,
// tables and Go sections. Every outcome is a result or an elfkit error — never another
// exception, never a hang.
import { beforeAll, describe, expect, test } from "bun:test";
import fc from "fast-check";
import { readFileSync } from "node:fs";
import { elfFromBytes, ElfError } from "../../../src/elfkit/elf.ts";
import { readGoBuildInfo, GoBuildInfoError } from "../../../src/elfkit/go-buildinfo.ts";
import { readGoFunctions, GoPclntabError } from "../../../src/elfkit/gopclntab.ts";
import { findRets, loadDecoder, DecodeError } from "../../../src/elfkit/decode.ts";
import { goBinary } from "../../support/go-build.ts";

let goBytes: Uint8Array;
let libBytes: Uint8Array;

beforeAll(async () => {
  goBytes = new Uint8Array(readFileSync(goBinary("stripped")));
  libBytes = new Uint8Array(readFileSync("/usr/lib/x86_64-linux-gnu/libssl.so.3"));
  await loadDecoder();
}, 300_000);

const ELFKIT_ERRORS = [ElfError, GoBuildInfoError, GoPclntabError, DecodeError];

/** Everything elfkit does with a file; returns how far it got. */
const outcomes = { ok: 0, error: 0 };
function analyse(bytes: Uint8Array): string {
  const r = analyseOnce(bytes);
  outcomes[r as "ok" | "error"]++;
  return r;
}

function analyseOnce(bytes: Uint8Array): string {
  try {
    const elf = elfFromBytes(bytes, "fuzzed");
    elf.symbols(new Set(["SSL_read", "SSL_write"]));
    elf.symbols(new Set(["main.main"]), ".symtab");
    readGoBuildInfo(elf);
    const table = readGoFunctions(elf);
    for (const f of table?.find(["crypto/tls.(*Conn).Read"]).values() ?? []) findRets(elf, f.entry, Math.min(f.end, f.entry + (1 << 16)));
    return "ok";
  } catch (e) {
    if (ELFKIT_ERRORS.some((k) => e instanceof k)) return "error";
    throw e;
  }
}

/** The sections whose damage matters most, to aim mutations at them. */
function regions(bytes: Uint8Array): [number, number][] {
  const elf = elfFromBytes(bytes, "x");
  const out: [number, number][] = [[0, 64]];
  const shoff = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0x28, true));
  out.push([shoff, bytes.length - shoff]);
  for (const name of [".gopclntab", ".go.buildinfo", ".dynsym", ".dynstr", ".symtab"]) {
    const s = elf.section(name);
    if (s) out.push([s.offset, Math.min(s.size, 1 << 16)]);
  }
  return out;
}

describe("elfkit on damaged files", () => {
  test("random bytes, and files of 0 to 200 bytes", () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 4096 }), (b) => expect(analyse(b)).toBe("error")), { numRuns: 300 });
    for (let n = 0; n <= 200; n++) expect(analyse(goBytes.slice(0, n))).toBe("error");
  });

  test("a 32-bit ELF: a clear error", () => {
    const b = goBytes.slice(0, 4096);
    b[4] = 1; // ELFCLASS32
    expect(() => elfFromBytes(b, "x")).toThrow(/not a 64-bit little-endian ELF file/);
  });

  test("truncated at any length", () => {
    for (const bytes of [goBytes, libBytes]) {
      fc.assert(fc.property(fc.integer({ min: 0, max: bytes.length - 1 }), (n) => ["ok", "error"].includes(analyse(bytes.subarray(0, n)))), { numRuns: 60 });
    }
  });

  test("bytes overwritten in the headers, tables and Go sections", () => {
    for (const bytes of [goBytes, libBytes]) {
      const rs = regions(bytes);
      const mutation = fc.record({
        region: fc.integer({ min: 0, max: rs.length - 1 }),
        at: fc.nat(),
        values: fc.uint8Array({ minLength: 1, maxLength: 16 }),
      });
      fc.assert(
        fc.property(fc.array(mutation, { minLength: 1, maxLength: 8 }), (ms) => {
          const copy = bytes.slice();
          for (const m of ms) {
            const [start, len] = rs[m.region]!;
            copy.set(m.values.subarray(0, Math.max(0, copy.length - (start + (m.at % Math.max(1, len))))), start + (m.at % Math.max(1, len)));
          }
          const t0 = performance.now();
          const outcome = analyse(copy);
          expect(performance.now() - t0).toBeLessThan(5000);
          return outcome === "ok" || outcome === "error";
        }),
        { numRuns: 120 },
      );
    }
    // The mutations must both break files and leave some readable, or they test nothing.
    expect(outcomes.ok).toBeGreaterThan(20);
    expect(outcomes.error).toBeGreaterThan(20);
  }, 120_000);
});
