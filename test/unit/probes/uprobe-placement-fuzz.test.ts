// The placement chooser over every function of every libssl and libcrypto on this machine
// (OpenSSL's and NSS's) and of the Go test binaries, as if each were a probed function: it
// never throws, and every place it picks lies inside its function (or is the entry of the
// internal function the pair calls) on an instruction boundary that objdump reads too.
import { beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, realpathSync } from "node:fs";
import { openElf } from "../../../src/elfkit/elf.ts";
import { loadDecoder } from "../../../src/elfkit/decode.ts";
import { readGoFunctions } from "../../../src/elfkit/gopclntab.ts";
import { placeEntryProbe, placeGoEntry, planOpenssl } from "../../../src/probes/uprobe-placement.ts";
import { goBinary } from "../../support/go-build.ts";
import * as L from "../../../src/bpf/gen/layout.ts";

const LIB_DIR = "/usr/lib/x86_64-linux-gnu";
const CODES = { read: L.TW_SSL_READ, write: L.TW_SSL_WRITE, readEx: L.TW_SSL_READ_EX, writeEx: L.TW_SSL_WRITE_EX, free: L.TW_SSL_FREE };

beforeAll(async () => {
  await loadDecoder();
}, 300_000);

/** Every instruction address objdump reads in the file's code. */
function boundaries(path: string): Set<number> {
  const r = Bun.spawnSync(["objdump", "-d", "--no-show-raw-insn", path], { stdout: "pipe", maxBuffer: 1 << 30 });
  const out = new Set<number>();
  for (const m of r.stdout.toString().matchAll(/^ *([0-9a-f]+):\t/gm)) out.add(parseInt(m[1]!, 16));
  return out;
}

/** The defined functions of a shared library, with sizes (nm -D). */
function libraryFunctions(path: string): { name: string; vaddr: number; size: number }[] {
  const r = Bun.spawnSync(["nm", "-D", "--defined-only", "-S", path], { stdout: "pipe" });
  const out: { name: string; vaddr: number; size: number }[] = [];
  for (const m of r.stdout.toString().matchAll(/^([0-9a-f]+) ([0-9a-f]+) [TtWi] (\S+)$/gm)) out.push({ vaddr: parseInt(m[1]!, 16), size: parseInt(m[2]!, 16), name: m[3]! });
  return out.filter((f) => f.size > 0);
}

const libraries = [...new Set(readdirSync(LIB_DIR).filter((n) => /^lib(ssl|crypto)[\w.]*\.so[.\d]*$/.test(n)).map((n) => realpathSync(`${LIB_DIR}/${n}`)))];

describe("every function of every libssl and libcrypto here", () => {
  test("there are some", () => {
    expect(libraries.length).toBeGreaterThanOrEqual(2);
  });
  for (const path of libraries) {
    test(`${path}: entry probes and pairs placed inside their functions, on instruction boundaries`, () => {
      const at = boundaries(path);
      const fns = libraryFunctions(path);
      expect(fns.length).toBeGreaterThan(50);
      const elf = openElf(path);
      let moved = 0;
      try {
        for (const f of fns) {
          const p = placeEntryProbe(elf, f.vaddr, f.size, ["rdi", "rsi", "rdx", "rcx"]);
          expect(p.vaddr).toBeGreaterThanOrEqual(f.vaddr);
          expect(p.vaddr).toBeLessThan(f.vaddr + f.size);
          if (!at.has(p.vaddr)) throw new Error(`${f.name}: 0x${p.vaddr.toString(16)} is not an instruction objdump reads`);
          if (p.vaddr !== f.vaddr) moved++;
        }
        // Each function as SSL_read, the next as SSL_read_ex.
        for (let i = 0; i + 1 < fns.length; i++) {
          const [plain, ex] = [fns[i]!, fns[i + 1]!];
          const plan = planOpenssl(elf, [{ ...plain, name: "SSL_read", fn: L.TW_SSL_READ }, { ...ex, name: "SSL_read_ex", fn: L.TW_SSL_READ_EX }], CODES);
          for (const p of plan) {
            if (!at.has(p.place.vaddr)) throw new Error(`${plain.name}/${ex.name}: 0x${p.place.vaddr.toString(16)} is not an instruction objdump reads`);
            if (p.covers.length === 1) expect(p.place.vaddr).toBe(p.covers[0] === "SSL_read" ? plain.vaddr : ex.vaddr);
          }
        }
      } finally {
        elf.close();
      }
      // The chooser does move probes in real code, not only refuse.
      expect(moved).toBeGreaterThan(0);
    }, 120_000);
  }
});

describe("every function of the Go test binaries", () => {
  for (const variant of ["plain", "pie"] as const) {
    test(`${variant}: Go entry probes placed inside their functions, past the stack check when moved`, () => {
      const path = goBinary(variant);
      const at = boundaries(path);
      const elf = openElf(path);
      let once = 0;
      try {
        const table = readGoFunctions(elf)!;
        expect(table.functions.length).toBeGreaterThan(1000);
        for (const f of table.functions) {
          const p = placeGoEntry(elf, f.entry, f.end - f.entry);
          expect(p.vaddr).toBeGreaterThanOrEqual(f.entry);
          expect(p.vaddr).toBeLessThan(f.end);
          if (!at.has(p.vaddr)) throw new Error(`${f.name}: 0x${p.vaddr.toString(16)} is not an instruction objdump reads`);
          if (p.once) {
            once++;
            expect(p.vaddr).toBeGreaterThan(f.entry);
          } else {
            expect(p.vaddr).toBe(f.entry);
          }
        }
      } finally {
        elf.close();
      }
      expect(once).toBeGreaterThan(100);
    }, 120_000);
  }
});
