// How long tapwire takes to analyse a large Go executable before probing it: open the ELF,
// read build info and the function table, find crypto/tls's functions and the RETs of Read,
// and the runtime layout (moduledata, the itab walk, struct offsets from type information).
// The binary is generated (N functions that the linker keeps, plus net/http and crypto/tls)
// to pass 50 MB, built once with the machine's Go and cached in /tmp.
//
//   bun bench/go-analysis.ts [--functions N]
import { existsSync, mkdirSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { openElf } from "../src/elfkit/elf.ts";
import { loadDecoder } from "../src/elfkit/decode.ts";
import { goTlsTargets } from "../src/probes/go-tls-targets.ts";
import { goRuntimeLayout } from "../src/probes/go-runtime-layout.ts";

const argv = process.argv.slice(2);
const functions = Number(argv[argv.indexOf("--functions") + 1] || 0) || 53_000;

function generate(dir: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(`${dir}/go.mod`, "module tapwire.bench/biggo\n\ngo 1.19\n");
  writeFileSync(
    `${dir}/main.go`,
    `package main

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
)

func main() {
	s := ""
	for i, f := range table {
		s = f(i, len(os.Args), s)
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{}}}
	if len(os.Args) > 1 { // never run by the bench: it makes the linker keep crypto/tls
		resp, err := c.Get(os.Args[1])
		fmt.Println(resp, err)
	}
	fmt.Println(len(s))
}
`,
  );
  const parts = ['package main\n\nimport "strconv"\n'];
  for (let i = 0; i < functions; i++) {
    parts.push(`//go:noinline
func f${i}(a, b int, s string) string {
	x := a*${i + 3} + b
	switch x % 7 {
	case 0:
		s += strconv.Itoa(x) + "a${i}"
	case 1:
		s += strconv.Itoa(x*2) + "b${i}"
	case 2:
		s = s[:len(s)/2] + strconv.Itoa(b)
	case 3:
		s += strconv.FormatInt(int64(x), 16)
	default:
		s = "d${i}" + s
	}
	if len(s) > ${(i % 50) + 10} {
		return s[:10]
	}
	return s
}
`);
  }
  parts.push("var table = []func(int, int, string) string{\n");
  for (let i = 0; i < functions; i++) parts.push(`\tf${i},\n`);
  parts.push("}\n");
  writeFileSync(`${dir}/gen.go`, parts.join("\n"));
}

function build(dir: string, out: string, flags: string[]): string {
  if (existsSync(out)) return out;
  console.log(`building ${out} (${functions} functions; a minute or two, once)`);
  const r = Bun.spawnSync(["go", "build", ...flags, "-o", `${out}.tmp`, "."], { cwd: dir, env: { ...process.env, GOTOOLCHAIN: "local" }, stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`go build failed: ${r.stderr.toString()}`);
  Bun.spawnSync(["mv", `${out}.tmp`, out]);
  return out;
}

/** Everything tapwire does with a Go binary before attaching, timed. */
function analyse(path: string): { ms: number; source: string; rets: number } {
  const t0 = performance.now();
  const elf = openElf(path);
  try {
    const go = goTlsTargets(elf);
    if (!go?.read) throw new Error(`${path}: ${go?.unsupported ?? "not Go"}`);
    const pclntab = (elf.section(".gopclntab") ?? elf.section(".data.rel.ro.gopclntab"))!;
    const layout = goRuntimeLayout(elf, go.buildInfo.release, pclntab.addr);
    if (layout.tcpConnItab === undefined) throw new Error(`${path}: no itab`);
    return { ms: performance.now() - t0, source: layout.source, rets: go.read.retOffsets.length };
  } finally {
    elf.close();
  }
}

const dir = `${tmpdir()}/tapwire-bench-biggo-${functions}`;
if (!existsSync(`${dir}/gen.go`)) generate(dir);
const variants = [
  ["unstripped", build(dir, `${dir}/big`, [])],
  ["stripped (-s -w)", build(dir, `${dir}/big-stripped`, ["-ldflags=-s -w"])],
] as const;

await loadDecoder();
for (const [name, path] of variants) {
  const mb = statSync(path).size / 1e6;
  const first = analyse(path);
  const warm: number[] = [];
  for (let i = 0; i < 5; i++) warm.push(analyse(path).ms);
  warm.sort((a, b) => a - b);
  console.log(
    `${name.padEnd(17)} ${mb.toFixed(1)} MB: first ${first.ms.toFixed(0)} ms, then median ${warm[2]!.toFixed(0)} ms` +
      ` (offsets from ${first.source}; ${first.rets} RETs in Read)`,
  );
}
