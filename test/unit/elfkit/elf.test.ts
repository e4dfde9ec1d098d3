// The ELF reader against real files of this machine, checked with binutils' readelf; and
// files that are not ELF, or are cut short, as clear errors.
import { describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { openElf, ElfError } from "../../../src/elfkit/elf.ts";
import { opensslFunctions } from "../../../src/probes/openssl.ts";

const LIBSSL = "/usr/lib/x86_64-linux-gnu/libssl.so.3";

/** readelf's view: name -> [value, section index], and section index -> [addr, offset]. */
function readelf(path: string) {
  const syms = new Map<string, [number, number]>();
  const out = Bun.spawnSync(["readelf", "-W", "--dyn-syms", path]).stdout.toString();
  for (const m of out.matchAll(/^\s*\d+: ([0-9a-f]+)\s+\d+ FUNC\s+\S+\s+\S+\s+(\d+) (\S+?)(@.*)?$/gm)) syms.set(m[3]!, [parseInt(m[1]!, 16), Number(m[2])]);
  const secs = new Map<number, [number, number]>();
  const s = Bun.spawnSync(["readelf", "-W", "-S", path]).stdout.toString();
  for (const m of s.matchAll(/^\s*\[\s*(\d+)\]\s+\S+\s+\S+\s+([0-9a-f]+) ([0-9a-f]+)/gm)) secs.set(Number(m[1]), [parseInt(m[2]!, 16), parseInt(m[3]!, 16)]);
  return { syms, secs };
}

describe("ELF symbols", () => {
  test("libssl's SSL_* functions: the values and file offsets readelf gives", () => {
    const names = ["SSL_read", "SSL_write", "SSL_read_ex", "SSL_write_ex", "SSL_do_handshake"];
    const elf = openElf(LIBSSL);
    const found = elf.symbols(new Set(names));
    elf.close();
    const ref = readelf(LIBSSL);
    for (const n of names) {
      const [value, shndx] = ref.syms.get(n)!;
      const [addr, offset] = ref.secs.get(shndx)!;
      expect(found.get(n)).toMatchObject({ name: n, value, fileOffset: value - addr + offset, defined: true, isFunction: true });
    }
  });

  test("a name longer than any asked for is not mistaken for one (SSL_read_early_data)", () => {
    const elf = openElf(LIBSSL);
    expect([...elf.symbols(new Set(["SSL_read"])).keys()]).toEqual(["SSL_read"]);
    elf.close();
  });

  test("an OpenSSL is recognised by its exports; curl, which imports them, is not one", () => {
    expect(opensslFunctions(LIBSSL).map((f) => f.name)).toEqual(["SSL_read", "SSL_write", "SSL_read_ex", "SSL_write_ex", "SSL_do_handshake", "SSL_connect", "SSL_accept", "SSL_free", "SSL_new"]);
    expect(opensslFunctions("/usr/bin/curl")).toEqual([]);
    expect(opensslFunctions("/etc/hostname")).toEqual([]);
  });

  test("not ELF, cut short, missing: ElfError with the reason", () => {
    const dir = mkdtempSync(`${tmpdir()}/tapwire-elf-`);
    writeFileSync(`${dir}/text`, "#!/bin/sh\necho not elf\n".repeat(10));
    expect(() => openElf(`${dir}/text`)).toThrow(new ElfError(`${dir}/text: not an ELF file`));
    writeFileSync(`${dir}/cut`, readFileSync(LIBSSL).subarray(0, 4096));
    expect(() => openElf(`${dir}/cut`)).toThrow(/truncated/);
    expect(() => openElf(`${dir}/absent`)).toThrow(ElfError);
    writeFileSync(`${dir}/tiny`, "\x7fELF");
    expect(() => openElf(`${dir}/tiny`)).toThrow(/truncated/);
  });
});
