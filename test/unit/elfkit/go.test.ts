// elfkit on real Go executables built here with Debian's Go: build info, the function table
// (stripped and PIE too), and every RET of every function cross-checked with objdump.
import { beforeAll, describe, expect, test } from "bun:test";
import { openElf } from "../../../src/elfkit/elf.ts";
import { readGoBuildInfo } from "../../../src/elfkit/go-buildinfo.ts";
import { readGoFunctions } from "../../../src/elfkit/gopclntab.ts";
import { findRets, loadDecoder } from "../../../src/elfkit/decode.ts";
import { goBinary, type GoVariant } from "../../support/go-build.ts";

const VARIANTS: GoVariant[] = ["plain", "stripped", "pie", "v3"];
const bins = {} as Record<GoVariant, string>;
let goVersion = "";

beforeAll(async () => {
  for (const v of VARIANTS) bins[v] = goBinary(v);
  goVersion = /go version (go\S+)/.exec(Bun.spawnSync(["go", "version"]).stdout.toString())![1]!;
  await loadDecoder();
}, 300_000);

/** objdump's RETs (near returns), by address. */
function objdumpRets(path: string): Set<number> {
  const out = Bun.spawnSync(["objdump", "-d", "--no-show-raw-insn", "-j", ".text", path], { stdout: "pipe" }).stdout.toString();
  const rets = new Set<number>();
  for (const m of out.matchAll(/^\s*([0-9a-f]+):\s+(?:(?:rep[nz]?|bnd|notrack)\s+)*retq?\b/gm)) rets.add(parseInt(m[1]!, 16));
  return rets;
}

describe("Go build info", () => {
  test.each(VARIANTS)("%s: version, main package and module", (v) => {
    const elf = openElf(bins[v]);
    const info = readGoBuildInfo(elf)!;
    elf.close();
    expect(info.version).toBe(goVersion);
    expect(info.release).toEqual([1, 19]);
    expect(info.path).toBe("tapwire.test/gohttps");
    expect(info.mainModule).toBe("tapwire.test/gohttps");
    expect(info.settings).toContainEqual(["GOARCH", "amd64"]);
    if (v === "stripped") expect(info.settings).toContainEqual(["-ldflags", '"-s -w"']);
    if (v === "v3") expect(info.settings).toContainEqual(["GOAMD64", "v3"]);
  });

  test("not Go: undefined", () => {
    const elf = openElf("/usr/bin/curl");
    expect(readGoBuildInfo(elf)).toBeUndefined();
    expect(readGoFunctions(elf)).toBeUndefined();
    elf.close();
  });
});

describe("Go function table", () => {
  test("the unstripped binary: every function's entry is its symbol's value", () => {
    const elf = openElf(bins.plain);
    const table = readGoFunctions(elf)!;
    // Some names have two symbols (an ABI wrapper and the function): any may be the entry.
    const syms = new Map<string, number[]>();
    const out = Bun.spawnSync(["readelf", "-W", "-s", bins.plain]).stdout.toString();
    for (const m of out.matchAll(/^\s*\d+: ([0-9a-f]+)\s+\d+ FUNC\s+\S+\s+\S+\s+\S+ (.+)$/gm)) {
      const name = m[2]!.replace(/\.abi0$/, "");
      syms.set(name, [...(syms.get(name) ?? []), parseInt(m[1]!, 16)]);
    }
    expect(table.functions.length).toBeGreaterThan(3000);
    let checked = 0;
    for (const f of table.functions) {
      const values = syms.get(f.name);
      if (!values) continue; // a few runtime entries have no symbol of that name
      expect([f.name, values]).toEqual([f.name, expect.arrayContaining([f.entry])]);
      checked++;
    }
    expect(checked).toBeGreaterThan(table.functions.length * 0.95);
    elf.close();
  });

  test.each(["stripped", "pie"] as GoVariant[])("%s: crypto/tls.(*Conn).Read and Write found, as in the unstripped build", (v) => {
    const names = ["crypto/tls.(*Conn).Read", "crypto/tls.(*Conn).Write"];
    const plain = openElf(bins.plain);
    const other = openElf(bins[v]);
    const a = readGoFunctions(plain)!.find(names);
    const b = readGoFunctions(other)!.find(names);
    expect([...b.keys()].sort()).toEqual([...names].sort());
    for (const n of names) expect(b.get(n)!.end - b.get(n)!.entry).toBe(a.get(n)!.end - a.get(n)!.entry);
    if (v === "pie") expect(other.type).toBe(3); // ET_DYN
    plain.close();
    other.close();
  });
});

describe("RETs", () => {
  test.each(VARIANTS)("%s: every function's RETs are objdump's", (v) => {
    const elf = openElf(bins[v]);
    const table = readGoFunctions(elf)!;
    const expected = objdumpRets(bins[v]);
    const undecodable: string[] = [];
    let compared = 0;
    for (const f of table.functions) {
      const r = findRets(elf, f.entry, f.end);
      if (r.undecodable.length) {
        undecodable.push(f.name);
        continue;
      }
      const theirs = [...expected].filter((a) => a >= f.entry && a < f.end).sort((x, y) => x - y);
      expect([f.name, r.rets]).toEqual([f.name, theirs]);
      compared++;
    }
    // Only an assembly function that holds data (a marker) does not decode; objdump shows it as (bad) too.
    expect(undecodable).toEqual(["crypto/internal/boring/sig.StandardCrypto"]);
    expect(compared).toBe(table.functions.length - 1);
    elf.close();
  }, 120_000);
});
