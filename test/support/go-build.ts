// Builds the Go test peer (test/peers-go/gohttps) with Debian's Go, in the variants the
// tests need, once per source version: later test files reuse the binaries.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
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

/** Path of the built binary (built now if this source has not been built before). */
export function goBinary(variant: GoVariant, peer: "gohttps" | "gotrace" = "gohttps"): string {
  const peerDir = resolve(GO_PEER_DIR, "..", peer);
  const hash = createHash("sha256").update(readFileSync(`${peerDir}/main.go`)).update(readFileSync(`${peerDir}/go.mod`)).digest("hex").slice(0, 12);
  const dir = `${tmpdir()}/tapwire-go-${hash}`;
  const out = `${dir}/${peer}-${variant}`;
  if (existsSync(out)) return out;
  mkdirSync(dir, { recursive: true });
  const r = Bun.spawnSync(["go", "build", ...FLAGS[variant].args, "-o", `${out}.tmp`, "."], {
    cwd: peerDir,
    env: { ...process.env, GOFLAGS: "-mod=mod", GOTOOLCHAIN: "local", ...FLAGS[variant].env },
    stderr: "pipe",
  });
  if (r.exitCode !== 0) throw new Error(`go build (${variant}) failed: ${r.stderr.toString()}`);
  Bun.spawnSync(["mv", `${out}.tmp`, out]);
  return out;
}
