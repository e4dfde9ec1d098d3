// What the dynamic loader reads, read by elfkit and checked against binutils and ldconfig:
// symbols found through the GNU hash table, DT_NEEDED/RUNPATH, and the loader's cache.
import { describe, expect, test } from "bun:test";
import { copyFileSync, mkdtempSync, readFileSync, realpathSync } from "node:fs";
import { tmpdir } from "node:os";
import { openElf, elfFromBytes } from "../../../src/elfkit/elf.ts";
import { parseLdCache } from "../../../src/elfkit/ld-cache.ts";

const LIBSSL = "/usr/lib/x86_64-linux-gnu/libssl.so.3";
const NODE = realpathSync(Bun.which("node")!);

/** The section table without .gnu.hash: the same file, searched by scanning. */
function withoutGnuHash(path: string): ReturnType<typeof elfFromBytes> {
  const bytes = new Uint8Array(readFileSync(path));
  const dv = new DataView(bytes.buffer);
  const shoff = Number(dv.getBigUint64(0x28, true));
  const shnum = dv.getUint16(0x3c, true);
  for (let i = 0; i < shnum; i++) {
    const o = shoff + i * 64;
    if (dv.getUint32(o + 4, true) === 0x6ffffff6) dv.setUint32(o + 4, 1, true); // now PROGBITS
  }
  return elfFromBytes(bytes, path);
}

describe("symbols through .gnu.hash", () => {
  test("equal a scan of the whole table, for every exported SSL_ and BIO_ function of libssl", () => {
    const names = new Set<string>();
    const out = Bun.spawnSync(["readelf", "-W", "--dyn-syms", LIBSSL]).stdout.toString();
    for (const m of out.matchAll(/ FUNC\s+GLOBAL\s+DEFAULT\s+\d+ ((?:SSL|BIO)_\w+)/g)) names.add(m[1]!);
    expect(names.size).toBeGreaterThan(300);
    names.add("no_such_function").add("SSL_"); // absent: not found either way
    const hashed = openElf(LIBSSL);
    const scanned = withoutGnuHash(LIBSSL);
    const a = hashed.symbols(names);
    const b = scanned.symbols(names);
    hashed.close();
    expect(a.size).toBe(names.size - 2);
    expect(a).toEqual(b);
  });

  test("node's OpenSSL (100,000 exported names) is found the same either way", () => {
    const names = new Set(["SSL_read", "SSL_write", "SSL_read_ex", "SSL_write_ex", "SSL_new", "SSL_free", "napi_create_string_utf8"]);
    const hashed = openElf(NODE);
    const a = hashed.symbols(names);
    hashed.close();
    const b = withoutGnuHash(NODE).symbols(names);
    expect(a.size).toBe(names.size);
    expect(a).toEqual(b);
  });
});

describe("the dynamic section", () => {
  test("DT_NEEDED and DT_RUNPATH as readelf -d shows them", () => {
    for (const path of ["/usr/bin/curl", LIBSSL, "/usr/bin/python3.11"]) {
      const text = Bun.spawnSync(["readelf", "-d", path]).stdout.toString();
      const needed = [...text.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
      const runpath = /\(RUNPATH\)\s+Library runpath: \[([^\]]+)\]/.exec(text)?.[1];
      const elf = openElf(path);
      expect(elf.dynamic()).toEqual({ needed, ...(runpath ? { runpath } : {}) });
      elf.close();
    }
  });

  test("a static executable needs nothing (Debian's ldconfig is static-pie)", () => {
    expect(Bun.spawnSync(["readelf", "-d", "/sbin/ldconfig"]).stdout.toString()).not.toContain("(NEEDED)");
    const elf = openElf("/sbin/ldconfig");
    expect(elf.dynamic().needed).toEqual([]);
    elf.close();
  });
});

describe("the loader's cache", () => {
  test("every x86-64 entry ldconfig -p lists, with its path", () => {
    const cache = parseLdCache(readFileSync("/etc/ld.so.cache"));
    const listed = Bun.spawnSync(["/sbin/ldconfig", "-p"]).stdout.toString();
    const first = new Map<string, string>();
    for (const m of listed.matchAll(/^\s*(\S+) \(libc6,x86-64[^)]*\) => (\S+)$/gm)) if (!first.has(m[1]!)) first.set(m[1]!, m[2]!);
    expect(first.size).toBeGreaterThan(50);
    expect(cache).toEqual(first);
  });

  test("garbage and a cut-short file give what they can, never an error", () => {
    const real = readFileSync("/etc/ld.so.cache");
    expect(parseLdCache(new Uint8Array(100).fill(7)).size).toBe(0);
    expect(parseLdCache(new Uint8Array(0)).size).toBe(0);
    const cut = parseLdCache(real.subarray(0, 48 + 24 * 10));
    expect(cut.size).toBe(0); // names point past the end: nothing
    const copy = `${mkdtempSync(`${tmpdir()}/tapwire-ldcache-`)}/ld.so.cache`;
    copyFileSync("/etc/ld.so.cache", copy);
    expect(parseLdCache(readFileSync(copy)).get("libssl.so.3")).toMatch(/libssl\.so\.3$/);
  });
});
