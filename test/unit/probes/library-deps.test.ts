// The libssl a program loads at start, found before it runs: through its libraries' own
// needs (curl -> libcurl -> libssl), LD_LIBRARY_PATH, RUNPATH with $ORIGIN, and inside
// another root (a container's) — each checked against where the loader really goes (ldd).
import { describe, expect, test } from "bun:test";
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { createLibraryResolver } from "../../../src/probes/library-deps.ts";

const LIBSSL = "/usr/lib/x86_64-linux-gnu/libssl.so.3";

/** ldd's answer for libssl (or another library). */
function lddLibssl(path: string, env: Record<string, string> = {}, name = "libssl"): string | undefined {
  const out = Bun.spawnSync(["ldd", path], { env: { ...process.env, ...env } }).stdout.toString();
  return new RegExp(`${name}\\.so\\S*\\s+=>\\s+(\\S+)`).exec(out)?.[1];
}

describe("libssl a program loads at start", () => {
  test("curl: through libcurl, from the loader's cache (where ldd finds it); GnuTLS too, through librtmp", () => {
    const found = createLibraryResolver().tlsLibrariesOf("/usr/bin/curl", "/usr/bin/curl", "");
    expect(found).toEqual([
      { library: lddLibssl("/usr/bin/curl")!, libcrypto: "/lib/x86_64-linux-gnu/libcrypto.so.3" },
      { library: lddLibssl("/usr/bin/curl", {}, "libgnutls")! },
    ]);
  });

  test("wget: GnuTLS, needed directly", () => {
    const found = createLibraryResolver().tlsLibrariesOf("/usr/bin/wget", "/usr/bin/wget", "");
    expect(found).toEqual([{ library: lddLibssl("/usr/bin/wget", {}, "libgnutls")! }]);
  });

  test("LD_LIBRARY_PATH comes first: a copy nothing has loaded", () => {
    const dir = mkdtempSync(`${tmpdir()}/tapwire-deps-`);
    copyFileSync(LIBSSL, `${dir}/libssl.so.3`);
    const found = createLibraryResolver().tlsLibrariesOf("/usr/bin/curl", "/usr/bin/curl", "", `/nonexistent:${dir}`);
    // Its libcrypto is not beside it: the system's, from the cache.
    expect(found[0]).toEqual({ library: `${dir}/libssl.so.3`, libcrypto: "/lib/x86_64-linux-gnu/libcrypto.so.3" });
    expect(lddLibssl("/usr/bin/curl", { LD_LIBRARY_PATH: `/nonexistent:${dir}` })).toBe(`${dir}/libssl.so.3`);
  });

  test("RUNPATH with $ORIGIN, inside another root", () => {
    const root = mkdtempSync(`${tmpdir()}/tapwire-root-`);
    mkdirSync(`${root}/app/lib`, { recursive: true });
    writeFileSync(`${root}/app/main.c`, "void *TLS_method(void); int main(void) { return TLS_method() == 0; }\n");
    const cc = Bun.spawnSync(["clang", "-o", `${root}/app/main`, `${root}/app/main.c`, LIBSSL, "-Wl,-rpath,$ORIGIN/lib"], { stderr: "pipe" });
    expect(cc.stderr.toString()).toBe("");
    copyFileSync(LIBSSL, `${root}/app/lib/libssl.so.3`);
    const found = createLibraryResolver().tlsLibrariesOf(`${root}/app/main`, "/app/main", root);
    // No loader cache nor libcrypto in this root: libcrypto is not found.
    expect(found).toEqual([{ library: `${root}/app/lib/libssl.so.3` }]);
    // Where the same program, run on the host, loads it from.
    expect(lddLibssl(`${root}/app/main`)).toBe(`${root}/app/lib/libssl.so.3`);
  });

  test("a program that needs no libssl: none; a file that is not ELF: none", () => {
    const r = createLibraryResolver();
    expect(r.tlsLibrariesOf("/usr/bin/ls", "/usr/bin/ls", "")).toEqual([]);
    expect(r.tlsLibrariesOf("/etc/hostname", "/etc/hostname", "")).toEqual([]);
    expect(r.tlsLibrariesOf("/nonexistent", "/nonexistent", "")).toEqual([]);
  });
});
