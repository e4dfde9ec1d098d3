// elfkit's DWARF struct reader on Go executables built here: every struct of the binary
// cross-checked with readelf's dump, the Go probes' offsets checked against the compiler's own
// layout (reflect, in the Go peer), what is read from each binary's type information checked
// against DWARF for every Go release installed for the tests, and damaged DWARF giving
// DwarfError only.
import { beforeAll, describe, expect, test } from "bun:test";
import fc from "fast-check";
import { openElf } from "../../../src/elfkit/elf.ts";
import { debugSection, parseDwarfStructs, readDwarfStructs, DwarfError } from "../../../src/elfkit/dwarf.ts";
import { readGoBuildInfo } from "../../../src/elfkit/go-buildinfo.ts";
import { dwarfOffsets, goRuntimeLayout, structFieldsFromTypes } from "../../../src/probes/go-runtime-layout.ts";
import { goBinary, NEWER_GO, type GoRelease, type GoVariant } from "../../support/go-build.ts";

const bins = {} as Record<GoVariant, string>;
beforeAll(() => {
  for (const v of ["plain", "stripped", "pie"] as GoVariant[]) {
    bins[v] = goBinary(v);
    for (const release of NEWER_GO) goBinary(v, "gohttps", release);
  }
}, 900_000);

/** Every named struct's members as readelf dumps them: name -> member -> offset. */
function readelfStructs(path: string): Map<string, Map<string, number>> {
  const out = Bun.spawnSync(["readelf", "--debug-dump=info", path], { stdout: "pipe" }).stdout.toString();
  const structs = new Map<string, Map<string, number>>();
  let current: Map<string, number> | undefined;
  let currentDepth = -1;
  let pending: { depth: number; tag: string; name?: string; loc?: number } | undefined;
  const flush = () => {
    if (!pending) return;
    if (pending.tag === "DW_TAG_structure_type" && pending.name && !structs.has(pending.name)) {
      structs.set(pending.name, (current = new Map()));
      currentDepth = pending.depth;
    } else if (pending.tag === "DW_TAG_member" && current && pending.depth === currentDepth + 1 && pending.name && pending.loc !== undefined) {
      current.set(pending.name, pending.loc);
    } else if (pending.depth <= currentDepth) current = undefined;
    pending = undefined;
  };
  for (const line of out.split("\n")) {
    const die = /^\s*<(\d+)><[0-9a-f]+>: Abbrev Number: \d+ \((\w+)\)/.exec(line);
    if (die) {
      flush();
      pending = { depth: Number(die[1]), tag: die[2]! };
      continue;
    }
    const name = /^\s*<[0-9a-f]+>\s+DW_AT_name\s+: (?:\(indirect string, offset: 0x[0-9a-f]+\): )?(.*)$/.exec(line);
    if (name && pending) pending.name = name[1]!.trimEnd();
    const loc = /^\s*<[0-9a-f]+>\s+DW_AT_data_member_location: (\d+)/.exec(line);
    if (loc && pending) pending.loc = Number(loc[1]);
  }
  flush();
  return structs;
}

describe("DWARF structs", () => {
  test.each(["plain", "pie"] as GoVariant[])("%s: every struct and member offset equals readelf's", (v) => {
    const expected = readelfStructs(bins[v]);
    expect(expected.size).toBeGreaterThan(1000);
    const elf = openElf(bins[v]);
    const got = readDwarfStructs(elf, expected.keys())!;
    elf.close();
    expect(got.size).toBe(expected.size);
    let members = 0;
    for (const [name, want] of expected) {
      expect([name, Object.fromEntries(got.get(name)!.members)]).toEqual([name, Object.fromEntries(want)]);
      members += want.size;
    }
    expect(members).toBeGreaterThan(5000);
  });

  test("a stripped binary (-w) has no DWARF", () => {
    const elf = openElf(bins.stripped);
    expect(readDwarfStructs(elf, ["net.netFD"])).toBeUndefined();
    elf.close();
  });

  test("reading only some compile units finds the same structs", () => {
    const elf = openElf(bins.plain);
    const names = ["runtime.moduledata", "crypto/tls.Conn", "net.netFD", "internal/poll.FD"];
    const all = readDwarfStructs(elf, names)!;
    const some = readDwarfStructs(elf, names, { units: ["runtime", "crypto/tls", "net", "internal/poll"] })!;
    elf.close();
    expect(some.size).toBe(4);
    for (const n of names) expect(some.get(n)).toEqual(all.get(n)!);
  });
});

describe("Go socket path offsets, read from each binary's type information", () => {
  const pclntabOf = (elf: ReturnType<typeof openElf>) => (elf.section(".gopclntab") ?? elf.section(".data.rel.ro.gopclntab"))!.addr;
  const releases: GoRelease[] = ["default", ...NEWER_GO];

  test("equal the compiler's layout (reflect) on the default Go, plain, stripped and PIE", () => {
    const truth = JSON.parse(Bun.spawnSync([bins.plain, "layout"], { stdout: "pipe" }).stdout.toString());
    for (const v of ["plain", "stripped", "pie"] as GoVariant[]) {
      const elf = openElf(bins[v]);
      const layout = goRuntimeLayout(elf, readGoBuildInfo(elf)!.release, pclntabOf(elf));
      expect([v, layout.source, layout.conn]).toEqual([v, "type information", truth]);
      elf.close();
    }
  });

  for (const release of releases) {
    test(`Go ${release}: equal DWARF in plain and PIE builds, and the stripped build reads the same`, () => {
      const read = (v: GoVariant) => {
        const elf = openElf(goBinary(v, "gohttps", release));
        try {
          const info = readGoBuildInfo(elf)!;
          if (release !== "default") expect(info.release.join(".")).toBe(release);
          return { layout: goRuntimeLayout(elf, info.release, pclntabOf(elf)), dwarf: dwarfOffsets(elf), info };
        } finally {
          elf.close();
        }
      };
      const plain = read("plain");
      const pie = read("pie");
      const stripped = read("stripped");
      for (const r of [plain, pie]) {
        expect(r.layout.source).toBe("type information");
        expect(r.layout.conn).toEqual(r.dwarf!.conn);
        // The ABI constants the type walk relies on, as this release's DWARF has them.
        expect([r.dwarf!.typeTflag, r.dwarf!.typeStr]).toEqual([20, 40]);
      }
      expect(stripped.dwarf).toBeUndefined();
      expect(stripped.layout).toEqual({ ...plain.layout });
    });

    test(`Go ${release}: every field of tls.Conn read from type information equals DWARF`, () => {
      const elf = openElf(goBinary("plain", "gohttps", release));
      try {
        const info = readGoBuildInfo(elf)!;
        const dwarf = readDwarfStructs(elf, ["crypto/tls.Conn"])!;
        const fromTypes = structFieldsFromTypes(elf, info.release, pclntabOf(elf), "*tls.Conn");
        expect(typeof fromTypes).not.toBe("string");
        const want = dwarf.get("crypto/tls.Conn")!.members;
        // Dozens of fields at offsets far from 0: a wrong layout of StructField shows here.
        expect(want.size).toBeGreaterThan(30);
        expect(Object.fromEntries(fromTypes as Map<string, number>)).toEqual(Object.fromEntries(want));
      } finally {
        elf.close();
      }
    });
  }

  test("the (net.Conn, *net.TCPConn) itab found by walking moduledata is the linker's symbol, in every release", () => {
    for (const release of releases) {
      const elf = openElf(goBinary("plain", "gohttps", release));
      const names = ["go.itab.*net.TCPConn,net.Conn", "go:itab.*net.TCPConn,net.Conn"]; // renamed in 1.20
      const syms = elf.symbols(new Set(names), ".symtab");
      const sym = names.map((n) => syms.get(n)).find(Boolean)!;
      expect([release, goRuntimeLayout(elf, readGoBuildInfo(elf)!.release, pclntabOf(elf)).tcpConnItab]).toEqual([release, sym.value]);
      elf.close();
    }
  });
});

describe("damaged DWARF", () => {
  test("mutated and truncated .debug_info/.debug_abbrev: a result or DwarfError, never another error or a hang", () => {
    const elf = openElf(bins.plain);
    const info = debugSection(elf, "info")!;
    const abbrev = debugSection(elf, "abbrev")!;
    elf.close();
    // The units holding what the probes need come first in the walk when asked by name.
    const names = ["runtime.moduledata", "net.netFD", "internal/poll.FD", "crypto/tls.Conn"];
    const units = ["runtime", "net", "internal/poll", "crypto/tls"];
    let errors = 0;
    fc.assert(
      fc.property(
        fc.oneof(
          fc.record({ kind: fc.constant("truncate" as const), section: fc.constantFrom("info", "abbrev"), at: fc.nat() }),
          fc.record({ kind: fc.constant("flip" as const), section: fc.constantFrom("info", "abbrev"), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }), count: fc.integer({ min: 1, max: 8 }) }),
        ),
        (m) => {
          const damaged = { info, abbrev };
          const src = damaged[m.section];
          if (m.kind === "truncate") damaged[m.section] = src.subarray(0, m.at % src.length);
          else {
            const copy = src.slice();
            for (let i = 0; i < m.count; i++) copy[(m.at + i * 7919) % copy.length] = (m.value + i * 31) & 0xff;
            damaged[m.section] = copy;
          }
          try {
            parseDwarfStructs(damaged, names, { units });
          } catch (e) {
            if (!(e instanceof DwarfError)) throw e;
            errors++;
          }
        },
      ),
      { numRuns: 300, seed: 7 },
    );
    expect(errors).toBeGreaterThan(0);
  }, 120_000);

  test("a compressed section that does not inflate is a DwarfError naming the file", () => {
    const bytes = new Uint8Array(require("node:fs").readFileSync(bins.plain));
    const elf = openElf(bins.plain);
    const sec = elf.section(".debug_info")!;
    elf.close();
    bytes.fill(0x55, sec.offset + 24, sec.offset + 64); // inside the zlib stream
    const { elfFromBytes } = require("../../../src/elfkit/elf.ts");
    expect(() => readDwarfStructs(elfFromBytes(bytes, "broken"), ["net.netFD"])).toThrow(DwarfError);
    expect(() => readDwarfStructs(elfFromBytes(bytes, "broken"), ["net.netFD"])).toThrow(/^broken: \.debug_info: /);
  });
});
