// Builds the Go test peer (test/peers-go/gohttps) with Debian's Go — the default one (1.19),
// or 1.21, 1.22, 1.23 from bookworm-backports — in the variants the tests need, once per
// source version and Go release: later test files reuse the binaries.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { tmpdir } from "node:os";

export const GO_PEER_DIR = resolve(import.meta.dir, "../peers-go/gohttps");

export type GoVariant = "plain" | "stripped" | "pie" | "v3";

const FLAGS: Record<GoVariant, { args: string[]; env?: Record<string, string> }> = {
  plain: { args: [] },
  stripped: { args: ["-ldflags=-s -w"] },
  pie: { args: ["-buildmode=pie"] },
  v3: { args: [], env: { GOAMD64: "v3" } }, // VEX-encoded instructions
};

/** The Go releases the tests build with, besides the default `go`: Debian's backports. */
export const NEWER_GO = ["1.21", "1.22", "1.23"] as const;
export type GoRelease = "default" | (typeof NEWER_GO)[number];

/** The `go` command of a release. */
export const goCommand = (release: GoRelease) => (release === "default" ? "go" : `/usr/lib/go-${release}/bin/go`);

/** Path of the built binary (built now if this source has not been built before). */
export function goBinary(variant: GoVariant, peer: "gohttps" | "gotrace" = "gohttps", release: GoRelease = "default"): string {
  const peerDir = resolve(GO_PEER_DIR, "..", peer);
  const hash = createHash("sha256").update(readFileSync(`${peerDir}/main.go`)).update(readFileSync(`${peerDir}/go.mod`)).digest("hex").slice(0, 12);
  const dir = `${tmpdir()}/tapwire-go-${hash}`;
  const out = `${dir}/${peer}-${variant}${release === "default" ? "" : `-go${release}`}`;
  if (existsSync(out)) return out;
  mkdirSync(dir, { recursive: true });
  const r = Bun.spawnSync([goCommand(release), "build", ...FLAGS[variant].args, "-o", `${out}.tmp`, "."], {
    cwd: peerDir,
    env: { ...process.env, GOFLAGS: "-mod=mod", GOTOOLCHAIN: "local", ...FLAGS[variant].env },
    stderr: "pipe",
  });
  if (r.exitCode !== 0) throw new Error(`go build (${variant}, ${release}) failed: ${r.stderr.toString()}`);
  Bun.spawnSync(["mv", `${out}.tmp`, out]);
  return out;
}

/** An unstripped Go program whose code passes 4 MB (main.work lies beyond file offset
 * 0x401000, where non-PIE Go code begins): generated, built once per machine. */
export function bigGoBinary(): string {
  const functions = 30_000;
  const dir = `${tmpdir()}/tapwire-go-big-${functions}`;
  const out = `${dir}/big`;
  if (existsSync(out)) return out;
  mkdirSync(dir, { recursive: true });
  const parts = ["package main\n\nimport (\n\t\"fmt\"\n\t\"os\"\n)\n\n//go:noinline\nfunc work(i int) int { return i * 2 }\n\nvar table = []func(int) int{\n"];
  for (let i = 0; i < functions; i++) parts.push(`\tf${i},\n`);
  parts.push("}\n\nfunc main() {\n\ts := 0\n\tfor i, f := range table {\n\t\ts += f(i + len(os.Args))\n\t}\n\tfmt.Println(work(s))\n}\n");
  for (let i = 0; i < functions; i++) {
    parts.push(`\n//go:noinline\nfunc f${i}(x int) int {\n\tswitch x % 7 {\n\tcase 0:\n\t\treturn x*${i} + 1\n\tcase 1:\n\t\treturn x ^ ${i}\n\tcase 2:\n\t\treturn x - ${i}*3\n\tcase 3:\n\t\treturn x/3 + ${i}\n\tdefault:\n\t\treturn x<<2 | ${i}\n\t}\n}\n`);
  }
  writeFileSync(`${dir}/go.mod`, "module tapwire.test/big\n\ngo 1.19\n");
  writeFileSync(`${dir}/main.go`, parts.join(""));
  const r = Bun.spawnSync(["go", "build", "-o", `${out}.tmp`, "."], { cwd: dir, env: { ...process.env, GOFLAGS: "-mod=mod", GOTOOLCHAIN: "local" }, stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`go build (big) failed: ${r.stderr.toString().slice(0, 2000)}`);
  Bun.spawnSync(["mv", `${out}.tmp`, out]);
  return out;
}
