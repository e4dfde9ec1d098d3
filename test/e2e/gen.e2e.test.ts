// `tapwire gen`: each built-in template generated for a Go 1.19 program built here
// (unstripped and stripped), run under the machine's bpftrace while the program does the
// thing the template watches; what the script prints is checked against what the program did.
import { beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { execFileSync } from "node:child_process";
import { PYTHON, PEERS, TAPWIRE, freePort, requireRoot, run, startServer, waitFor } from "./harness.ts";
import { makeCert, type Cert } from "./tls-setup.ts";
import { bigGoBinary, goBinary, type GoVariant } from "../support/go-build.ts";

let dir: string;
let cert: Cert;
const bins = {} as Record<"plain" | "stripped", string>;

beforeAll(async () => {
  requireRoot();
  dir = mkdtempSync(`${tmpdir()}/tapwire-gen-`);
  cert = await makeCert();
  for (const v of ["plain", "stripped"] as const) bins[v] = goBinary(v, "gotrace");
  goBinary("plain"); // the HTTPS server for tlssecrets
  bigGoBinary();
}, 300_000);

/** `tapwire gen`, as a user runs it: the script, and whether it needs --unsafe. */
async function gen(template: string, bin: string, ...params: string[]): Promise<{ file: string; unsafe: boolean }> {
  const file = `${dir}/${template}-${Math.random().toString(36).slice(2)}.bt`;
  const r = await run([TAPWIRE, "gen", template, bin, ...params, "-o", file]);
  if (r.exitCode !== 0) throw new Error(`tapwire gen ${template}: ${r.stderr}`);
  return { file, unsafe: r.stderr.includes("bpftrace --unsafe") };
}

/** Runs the script under bpftrace, does `act` once it is attached, and returns what bpftrace printed (its maps too, at the end). */
async function underBpftrace(script: { file: string; unsafe: boolean }, act: () => Promise<void>): Promise<string> {
  const proc = Bun.spawn(["bpftrace", ...(script.unsafe ? ["--unsafe"] : []), script.file], { stdout: "pipe", stderr: "pipe" });
  let out = "";
  let err = "";
  const outDone = (async () => {
    for await (const c of proc.stdout) out += new TextDecoder().decode(c);
  })();
  const errDone = (async () => {
    for await (const c of proc.stderr) err += new TextDecoder().decode(c);
  })();
  // "Attaching N probes" comes before they are; the script's BEGIN line comes after.
  await waitFor("bpftrace to attach", () => {
    if (proc.exitCode !== null) throw new Error(`bpftrace exited with ${proc.exitCode}: ${err}\n${readFileSync(script.file, "utf8")}`);
    return /^tracing .* Ctrl-C ends$/m.test(out);
  }, 30_000);
  try {
    await act();
    await Bun.sleep(500);
  } finally {
    // bpftrace 0.17 can miss a SIGINT that lands just before it waits for events (it then
    // waits for the next one): Ctrl-C again, once a second, as a user would.
    let code: number | string = "still running";
    for (let i = 0; i < 10 && code === "still running"; i++) {
      proc.kill("SIGINT");
      code = await Promise.race([proc.exited, Bun.sleep(1000).then(() => "still running")]);
    }
    if (code === "still running") {
      proc.kill("SIGKILL");
      throw new Error(`bpftrace did not exit within 10 s of SIGINT; it printed: ${out}\n${err}`);
    }
    await Promise.all([outDone, errDone]);
  }
  expect(err.split("\n").filter((l) => l && !/RLIMIT_MEMLOCK|Could not determine instruction boundary/.test(l))).toEqual([]);
  return out;
}

/** A Go function whose stack must grow runs its entry again (after runtime.morestack): an
 * entry probe can print the same line twice in a row for one call. */
const oncePerCall = (lines: string[]) => lines.filter((l, i) => lines[i + 1] !== l);

async function gotrace(bin: string, ...args: string[]) {
  const proc = Bun.spawn([bin, ...args], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const exited = await Promise.race([proc.exited, Bun.sleep(15_000).then(() => "still running")]);
  if (exited === "still running") {
    proc.kill("SIGQUIT"); // Go prints every goroutine's stack
    await proc.exited;
    throw new Error(`${bin} ${args.join(" ")} did not finish within 15 s: ${(await new Response(proc.stderr).text()).slice(0, 3000)}`);
  }
  const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  return { pid: proc.pid, exitCode: proc.exitCode!, out: out.trim(), err };
}

/** main.worker's address, as the unstripped binary's symbol table says (the stripped one has the same layout). */
function symbolAddress(name: string): string {
  const line = execFileSync("nm", [bins.plain], { encoding: "utf8" }).split("\n").find((l) => l.endsWith(` ${name}`));
  return `0x${BigInt(`0x${line!.split(" ")[0]}`).toString(16)}`;
}

for (const variant of ["plain", "stripped"] as GoVariant[]) {
  describe(`tapwire gen for a Go 1.19 program (${variant})`, () => {
    const bin = () => bins[variant as "plain" | "stripped"];

    test("goroutine: each goroutine started, with the function it runs", async () => {
      let pid = 0;
      const out = await underBpftrace(await gen("goroutine", bin()), async () => {
        const r = await gotrace(bin(), "spawn", "5");
        expect(r.out).toBe("spawned 5");
        pid = r.pid;
      });
      const lines = out.split("\n").filter((l) => l.startsWith(`pid ${pid} goroutine 0x`));
      // Its own five, beside the runtime's (GC workers, timers); named where there are symbols.
      const address = symbolAddress("main.worker");
      const named = variant === "plain" ? "main.worker" : address;
      expect(lines.filter((l) => l.endsWith(` started a goroutine running ${named} (${address})`)).length).toBe(5);
    }, 60_000);

    test("httpsnoop: method, URL and status of each request, and a request that fails", async () => {
      const port = await freePort();
      const server = await startServer([PYTHON, `${PEERS}/echo_server.py`, String(port)], "127.0.0.1", port);
      const closed = await freePort();
      let pids: number[] = [];
      try {
        const out = await underBpftrace(await gen("httpsnoop", bin()), async () => {
          const ok = await gotrace(bin(), "get", `http://127.0.0.1:${port}/text`);
          expect(ok.out).toBe("status 200");
          const missing = await gotrace(bin(), "get", `http://127.0.0.1:${port}/nothing-here`);
          expect(missing.out).toBe("status 404");
          const refused = await gotrace(bin(), "get", `http://127.0.0.1:${closed}/refused`);
          expect(refused.exitCode).not.toBe(0);
          pids = [ok.pid, missing.pid, refused.pid];
        });
        const lines = out.split("\n").filter((l) => /^pid \d+ /.test(l));
        expect(lines).toEqual([
          `pid ${pids[0]} 200 GET http://127.0.0.1:${port}/text`,
          `pid ${pids[1]} 404 GET http://127.0.0.1:${port}/nothing-here`,
          `pid ${pids[2]} error GET http://127.0.0.1:${closed}/refused`,
        ]);
      } finally {
        await server.stop();
      }
    }, 60_000);

    test("latency symbol=main.work: a count and a histogram of the calls' durations", async () => {
      const out = await underBpftrace(await gen("latency", bin(), "symbol=main.work"), async () => {
        expect((await gotrace(bin(), "work", "6")).out).toBe("worked 6 30");
      });
      expect(out).toContain(`tracing latency in ${bin()}; Ctrl-C ends\n`);
      expect(out).toMatch(/@calls\[main\.work\]: 6\n/);
      // Each call sleeps 2 ms: every one lands in the [2K, 4K) microseconds bucket.
      expect(out).toMatch(/@usecs\[main\.work\]:\s*\n\[2K, 4K\)\s+6 \|@+\|/);
    }, 60_000);

    test("recover: each recovered panic, with the stack of the recovering call", async () => {
      let pid = 0;
      const out = await underBpftrace(await gen("recover", bin()), async () => {
        const r = await gotrace(bin(), "panic", "3");
        expect(r.out).toBe("recovered 3");
        pid = r.pid;
      });
      const blocks = out.split(`pid ${pid} goroutine 0x`).slice(1);
      expect(blocks.length).toBe(3);
      if (variant === "plain") for (const b of blocks) expect(b).toContain("main.mayPanic");
    }, 60_000);

    test("shortread: a read of an *os.File that came back short", async () => {
      const file = `${dir}/ten-bytes`;
      writeFileSync(file, "0123456789");
      let pid = 0;
      const out = await underBpftrace(await gen("shortread", bin()), async () => {
        const r = await gotrace(bin(), "shortread", file);
        expect(r.out).toBe("read 10 4096 <nil>");
        pid = r.pid;
      });
      expect(out.split("\n").filter((l) => l.startsWith(`pid ${pid} short read:`))).toEqual([`pid ${pid} short read: 10 of 4096 bytes`]);
    }, 60_000);

    test("skeleton symbol=main.work: every entry and return", async () => {
      let pid = 0;
      const out = await underBpftrace(await gen("skeleton", bin(), "symbol=main.work"), async () => {
        const r = await gotrace(bin(), "work", "3");
        pid = r.pid;
      });
      const lines = oncePerCall(out.split("\n").filter((l) => l.startsWith(`pid ${pid} `)).map((l) => l.replace(/ goroutine 0x[0-9a-f]+$/, "")));
      expect(lines).toEqual([...Array(3)].flatMap(() => [`pid ${pid} enter main.work`, `pid ${pid} return main.work`]));
    }, 60_000);

    test("tcpremote: the address dialed", async () => {
      const port = await freePort();
      const server = await startServer([PYTHON, "-m", "http.server", String(port), "--bind", "127.0.0.1"], "127.0.0.1", port);
      let pid = 0;
      try {
        const out = await underBpftrace(await gen("tcpremote", bin()), async () => {
          const r = await gotrace(bin(), "dial", `127.0.0.1:${port}`);
          expect(r.out).toBe(`dialed 127.0.0.1:${port}`);
          pid = r.pid;
        });
        expect(oncePerCall(out.split("\n").filter((l) => l.startsWith(`pid ${pid} `)))).toEqual([`pid ${pid} dial tcp 127.0.0.1:${port}`]);
      } finally {
        await server.stop();
      }
    }, 60_000);

    test("tlssecrets: the NSS key log lines, equal to the program's own key log", async () => {
      const port = await freePort();
      const server = await startServer([goBinary("plain"), "server", String(port), cert.cert, cert.key], "127.0.0.1", port);
      const own = `${dir}/own-keys-${variant}.log`;
      try {
        const out = await underBpftrace(await gen("tlssecrets", bin()), async () => {
          expect((await gotrace(bin(), "get", `https://127.0.0.1:${port}/text`, cert.cert, own)).out).toBe("status 200");
        });
        // The template's advice: sed 's/\\x//g' makes the NSS key log format.
        const printed = new Set(out.replace(/\\x/g, "").split("\n").filter((l) => /^[A-Z_0-9]+ [0-9a-f]+ [0-9a-f]+$/.test(l)));
        const written = new Set(readFileSync(own, "latin1").trim().split("\n"));
        expect(written.size).toBe(4); // TLS 1.3
        expect([...printed].sort()).toEqual([...written].sort());
      } finally {
        await server.stop();
      }
    }, 60_000);

    test("random: the bytes crypto/rand gave", async () => {
      let pid = 0;
      let hex = "";
      const out = await underBpftrace(await gen("random", bin()), async () => {
        const r = await gotrace(bin(), "rand", "16");
        hex = r.out.replace(/^random /, "");
        pid = r.pid;
      });
      const line = out.split("\n").find((l) => l.startsWith(`pid ${pid} crypto/rand gave 16 bytes: `));
      expect(line?.split(": ")[1]?.replace(/\\x/g, "")).toBe(hex);
    }, 60_000);
  });
}

describe("tapwire gen tlssecrets for a position-independent Go program", () => {
  test("the labels, known by their addresses once the load bias is undone: equal to the program's own key log", async () => {
    const pie = goBinary("pie", "gotrace");
    const script = await gen("tlssecrets", pie);
    // Each label is matched by address (found in the file), not read from the program.
    expect(readFileSync(script.file, "utf8")).toMatch(/if \(\(\$at == 0x[0-9a-f]+\)\) \{\n    printf\("CLIENT_HANDSHAKE_TRAFFIC_SECRET /);
    const port = await freePort();
    const server = await startServer([goBinary("plain"), "server", String(port), cert.cert, cert.key], "127.0.0.1", port);
    const own = `${dir}/own-keys-pie.log`;
    try {
      const out = await underBpftrace(script, async () => {
        expect((await gotrace(pie, "get", `https://127.0.0.1:${port}/text`, cert.cert, own)).out).toBe("status 200");
      });
      const printed = new Set(out.replace(/\\x/g, "").split("\n").filter((l) => /^[A-Z_0-9]+ [0-9a-f]+ [0-9a-f]+$/.test(l)));
      const written = new Set(readFileSync(own, "latin1").trim().split("\n"));
      expect(written.size).toBe(4);
      expect([...printed].sort()).toEqual([...written].sort());
    } finally {
      await server.stop();
    }
  }, 120_000);
});

describe("what the generator knows", () => {
  test("the built-in struct offsets for binaries without DWARF equal a Go 1.19 binary's DWARF", async () => {
    const { OFFSETS_BY_RELEASE } = await import("../../src/probes/bpftrace/go-target.ts");
    const { openElf } = await import("../../src/elfkit/elf.ts");
    const { readDwarfStructs } = await import("../../src/elfkit/dwarf.ts");
    const table = OFFSETS_BY_RELEASE["1.19"]!;
    const elf = openElf(bins.plain);
    const dwarf = readDwarfStructs(elf, Object.keys(table))!;
    elf.close();
    for (const [struct, fields] of Object.entries(table)) for (const [field, off] of Object.entries(fields)) expect([struct, field, dwarf.get(struct)?.members.get(field)]).toEqual([struct, field, off]);
  });

  test("a bpftrace that takes \"symbol\"+offset gets named RET probes for a binary with symbols; a stripped one gets file offsets", async () => {
    const { openElf } = await import("../../src/elfkit/elf.ts");
    const { loadDecoder } = await import("../../src/elfkit/decode.ts");
    const { goTarget } = await import("../../src/probes/bpftrace/go-target.ts");
    const { generate } = await import("../../src/probes/bpftrace/generate.ts");
    await loadDecoder();
    const template = '{{returns "main.work"}} { }\n';
    for (const [variant, expectUnsafe] of [["plain", false], ["stripped", true]] as const) {
      const elf = openElf(bins[variant]);
      const target = goTarget(elf, bins[variant]);
      const f = target.func("main.work");
      const out = generate({ template, templateName: "t", target, params: new Map(), bpftrace: { version: "v0.20.0", symbolOffsets: true }, command: "test" });
      elf.close();
      expect(out.unsafe).toBe(expectUnsafe);
      const expected = f.retOffsets.map((r) => (variant === "plain" ? `uprobe:${bins.plain}:"main.work"+${r - f.fileOffset}` : `uprobe:${bins.stripped}:0x${r.toString(16)}`));
      expect(out.script).toContain(`${expected.join(",\n")} { }`);
    }
  });
});

describe("tapwire gen: mistakes are one line and exit 2", () => {
  test.each([
    [["skeleton", "BIN", "symbol=main.nope"], /^tapwire: \S+ has no function main\.nope \(go1\.19\.\d+\)$/],
    [["latency", "BIN"], /^tapwire: latency needs symbol=VALUE \(one or more\)$/],
    [["nosuchtemplate", "BIN"], /^tapwire: no template "nosuchtemplate": built in are goroutine, /],
    [["goroutine", "/etc/hostname"], /^tapwire: \/etc\/hostname: /],
    [["goroutine", "/usr/bin/python3"], /^tapwire: \/usr\/bin\/python3\.\d+ is not a Go executable/],
    [["skeleton", "BIN", "oops"], /^tapwire: gen: "oops" is not key=value$/],
    [["goroutine", "/tmp"], /^tapwire: \/tmp: a directory, not a file$/],
    [["goroutine", "BIN", "-o", "/nonexistent-dir/x.bt"], /^tapwire: -o \/nonexistent-dir\/x\.bt: no such file$/],
  ])("%p", async (args, message) => {
    const r = await run([TAPWIRE, "gen", ...args.map((a) => (a === "BIN" ? bins.stripped : a))]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr.trim().split("\n")).toEqual([expect.stringMatching(message)]);
  });

  test("a function past the first 4 MB of code with symbols is beyond bpftrace 0.17 (said, and why); a stripped copy is traced", async () => {
    const big = bigGoBinary();
    // Early functions are fine: their RETs' file offsets are below any code address.
    expect((await run([TAPWIRE, "gen", "skeleton", big, "symbol=main.f10"])).exitCode).toBe(0);
    const r = await run([TAPWIRE, "gen", "skeleton", big, "symbol=main.f29999"]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/^tapwire: bpftrace v0\.17\.0 cannot probe inside main\.f29999 in \S+: it takes "symbol"\+offset only when built with bfd, and would read the file offset 0x[0-9a-f]+ as an address in the program's code/);
    const stripped = `${dir}/big-stripped`;
    execFileSync("strip", ["-o", stripped, big]);
    let pid = 0;
    const out = await underBpftrace(await gen("skeleton", stripped, "symbol=main.f29999"), async () => {
      const p = await run([stripped]);
      expect(p.exitCode).toBe(0);
      pid = p.pid;
    });
    const lines = oncePerCall(out.split("\n").filter((l) => l.startsWith(`pid ${pid} `)).map((l) => l.replace(/ goroutine 0x[0-9a-f]+$/, "")));
    expect(lines).toEqual([`pid ${pid} enter main.f29999`, `pid ${pid} return main.f29999`]);
  }, 120_000);

  test("a template file of the user's: its fields filled in", async () => {
    const file = `${dir}/mine.bt.hbs`;
    writeFileSync(file, '// {{exe}} {{version}} regabi={{regabi}} who={{param "who"}} rets={{#each (retOffsets "main.work")}}{{this}};{{/each}}\n{{entry "main.work"}} { printf("%d\\n", {{arg 0}}); }\n');
    const r = await run([TAPWIRE, "gen", file, bins.stripped, "who=me"]);
    expect(r.exitCode).toBe(0);
    const text = new TextDecoder().decode(r.stdout);
    expect(text).toContain(`// ${bins.stripped} go1.19`);
    expect(text).toMatch(/ regabi=true who=me rets=(0x[0-9a-f]+;)+\n/);
    expect(text).toMatch(new RegExp(`\\nuprobe:${bins.stripped.replace(/[.]/g, "\\.")}:0x[0-9a-f]+ \\{ printf\\("%d\\\\n", reg\\("ax"\\)\\); \\}\\n`));
  });
});
