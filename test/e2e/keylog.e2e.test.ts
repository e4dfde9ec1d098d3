// `tapwire keylog`: the TLS secrets of Go programs in the NSS key log format, checked the
// way a user would: tshark records the loopback traffic and decrypts it with the file.
import { beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, readFileSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { PEERS, PYTHON, TAPWIRE, canConnect, freePort, freshCopy, requireRoot, run, startPeer, startServer, waitFor, type Peer } from "./harness.ts";
import { makeCert, type Cert } from "./tls-setup.ts";
import { goBinary, type GoVariant } from "../support/go-build.ts";

const TSHARK = "/usr/bin/tshark";
/** How keylog's summary ends: the execs it held until probed. */
const HELD = "; (?:no exec held|\\d+ execs? held \\(longest [\\d.]+ ms\\))";
let cert: Cert;
let dir: string;

beforeAll(async () => {
  requireRoot();
  cert = await makeCert();
  goBinary("plain");
  goBinary("stripped");
  dir = mkdtempSync(`${tmpdir()}/tapwire-keylog-`);
}, 300_000);

/** tshark recording one loopback port to a file, once it says it is capturing. */
async function record(port: number, file: string): Promise<Peer> {
  const p = startPeer([TSHARK, "-q", "-i", "lo", "-f", `tcp port ${port}`, "-w", file]);
  // tshark writes the file's header once it captures.
  await waitFor("tshark to capture", () => {
    if (p.proc.exitCode !== null) throw new Error(`tshark exited with ${p.proc.exitCode}`);
    return existsCapture(file);
  }, 20000);
  // The header can come before packets are seen: knock on the port (a connection closed at
  // once) until the file grows, so the client's handshake is surely recorded (at most 5 s).
  const header = readFileSync(file).length;
  for (let i = 0; i < 50 && readFileSync(file).length <= header; i++) {
    await canConnect("127.0.0.1", port);
    await Bun.sleep(100);
  }
  await Bun.sleep(200);
  return p;
}

function existsCapture(file: string): boolean {
  try {
    return readFileSync(file).length > 0;
  } catch {
    return false;
  }
}

interface Keylog {
  proc: ReturnType<typeof Bun.spawn>;
  stderr: string[];
}

async function keylog(args: string[]): Promise<Keylog> {
  const proc = Bun.spawn([TAPWIRE, "keylog", ...args], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const stderr: string[] = [];
  void (async () => {
    const dec = new TextDecoder();
    let rest = "";
    for await (const c of proc.stderr) {
      rest += dec.decode(c, { stream: true });
      let i;
      while ((i = rest.indexOf("\n")) >= 0) {
        stderr.push(rest.slice(0, i));
        rest = rest.slice(i + 1);
      }
    }
  })();
  await waitFor("keylog's ready line", () => {
    if (proc.exitCode !== null) throw new Error(`keylog exited with ${proc.exitCode}: ${stderr.join("\n")}`);
    return stderr.some((l) => l.startsWith("ready"));
  }, 30000);
  return { proc, stderr };
}

async function stop(k: Keylog): Promise<string> {
  k.proc.kill("SIGINT");
  const code = await Promise.race([k.proc.exited, Bun.sleep(3000).then(() => "timeout")]);
  expect(code).toBe(0);
  await Bun.sleep(50);
  return k.stderr.findLast((l) => l.startsWith("tapwire: ")) ?? "";
}

describe("tapwire keylog", () => {
  for (const variant of ["plain", "stripped"] as GoVariant[]) {
    test(`a Go client to a Go server over TLS 1.3 (${variant}): tshark decrypts the recording with the file`, async () => {
      const bin = goBinary(variant);
      const port = await freePort();
      const keys = `${dir}/keys-${variant}.log`;
      const pcap = `${dir}/lo-${variant}.pcapng`;
      const server = await startServer([bin, "server", String(port), cert.cert, cert.key], "127.0.0.1", port);
      const k = await keylog(["-o", keys, "-v"]);
      let summary = "";
      try {
        const capture = await record(port, pcap);
        try {
          // The server ran before keylog: found by the scan. (The client, the same file, is
          // probed already; a program started later is probed on its exec.)
          expect(k.stderr.some((l) => l.startsWith("keylog: probing go1.") && l.includes(bin))).toBe(true);
          const r = await run([bin, "post", `https://127.0.0.1:${port}/echo?secret=${variant}`, cert.cert, `keylog says hi ${variant}`]);
          expect([r.exitCode, r.stderr]).toEqual([0, ""]);
          await waitFor("the secrets of both sides", () => existsCapture(keys) && readFileSync(keys, "latin1").split("\n").length >= 5);
          await Bun.sleep(300);
        } finally {
          await capture.stop();
        }
      } finally {
        await server.stop();
        summary = await stop(k);
      }
      expect(statSync(keys).mode & 0o777).toBe(0o600);
      const lines = readFileSync(keys, "latin1").trim().split("\n");
      // TLS 1.3: four secrets per connection, each written once though both sides derive them.
      expect(lines.map((l) => l.split(" ")[0]).sort()).toEqual(["CLIENT_HANDSHAKE_TRAFFIC_SECRET", "CLIENT_TRAFFIC_SECRET_0", "SERVER_HANDSHAKE_TRAFFIC_SECRET", "SERVER_TRAFFIC_SECRET_0"]);
      for (const l of lines) expect(l).toMatch(/^[A-Z_0-9]+ [0-9a-f]{64} [0-9a-f]{64}$/);
      expect(new Set(lines.map((l) => l.split(" ")[1])).size).toBe(1); // one connection, one client random
      expect(summary).toMatch(new RegExp(`^tapwire: 4 secrets written from \\d+ Go programs?${HELD}$`));

      // Without the keys tshark sees no HTTP; with them, the request and the response.
      const plain = await run([TSHARK, "-r", pcap, "-Y", "http", "-T", "fields", "-e", "http.request.uri"]);
      expect(new TextDecoder().decode(plain.stdout).trim()).toBe("");
      const decrypted = await run([TSHARK, "-r", pcap, "-o", `tls.keylog_file:${keys}`, "-Y", "http", "-T", "fields", "-e", "http.request.method", "-e", "http.request.uri", "-e", "http.response.code", "-e", "http.file_data"]);
      const rows = new TextDecoder().decode(decrypted.stdout).trim().split("\n").map((l) => l.split("\t"));
      expect(rows.find((r) => r[0] === "POST")?.slice(0, 2)).toEqual(["POST", `/echo?secret=${variant}`]);
      expect(rows.find((r) => r[2] === "200")).toBeDefined();
      expect(new TextDecoder().decode(decrypted.stdout)).toContain(`keylog says hi ${variant}`);
    }, 120_000);
  }

  test("a Go client nothing has run before, started after keylog, making one request to a server that is not Go: its only handshake's secrets", async () => {
    const client = freshCopy(goBinary("plain"), "gocli-keylog");
    const port = await freePort();
    const keys = `${dir}/keys-first.log`;
    const k = await keylog(["-o", keys, "-v"]);
    const server = await startServer([PYTHON, `${PEERS}/https_echo.py`, String(port), cert.cert, cert.key], "127.0.0.1", port);
    let summary = "";
    try {
      const r = await run([client, "post", `https://127.0.0.1:${port}/echo`, cert.cert, "first"]);
      expect([r.exitCode, r.stderr]).toEqual([0, ""]);
      await waitFor("the client's secrets", () => existsCapture(keys) && readFileSync(keys, "latin1").split("\n").length >= 5);
    } finally {
      await server.stop();
      summary = await stop(k);
    }
    // Only the client is Go: the four secrets of its one TLS 1.3 connection are its own.
    const lines = readFileSync(keys, "latin1").trim().split("\n");
    expect(lines.map((l) => l.split(" ")[0]).sort()).toEqual(["CLIENT_HANDSHAKE_TRAFFIC_SECRET", "CLIENT_TRAFFIC_SECRET_0", "SERVER_HANDSHAKE_TRAFFIC_SECRET", "SERVER_TRAFFIC_SECRET_0"]);
    expect(k.stderr.some((l) => l.startsWith("keylog: probing go1.") && l.includes("(pid"))).toBe(true);
    expect(summary).toMatch(/^tapwire: 4 secrets written from \d+ Go programs?; \d+ execs? held \(longest [\d.]+ ms\)$/);
  }, 120_000);

  test("the key log file: an existing one is made private, a symbolic link is refused", async () => {
    const existing = `${dir}/existing.log`;
    writeFileSync(existing, "");
    chmodSync(existing, 0o644);
    const k = await keylog(["-o", existing]);
    expect(statSync(existing).mode & 0o777).toBe(0o600);
    expect(await stop(k)).toMatch(new RegExp(`^tapwire: 0 secrets written from \\d+ Go programs?${HELD}$`));
    symlinkSync(existing, `${dir}/link.log`);
    const r = await run([TAPWIRE, "keylog", "-o", `${dir}/link.log`]);
    expect([r.exitCode, r.stderr]).toEqual([2, `tapwire: -o ${dir}/link.log: a symbolic link (not followed: the file will hold secrets)\n`]);
  }, 60_000);

  test("a reader that goes away (keylog | head) ends keylog quietly, its probes detached", async () => {
    const bin = goBinary("plain");
    const port = await freePort();
    const server = await startServer([bin, "server", String(port), cert.cert, cert.key], "127.0.0.1", port);
    try {
      const sh = Bun.spawn(["sh", "-c", `${TAPWIRE} keylog 2>${dir}/head.err | head -c 10 >/dev/null`], { stdout: "ignore", stderr: "ignore" });
      await waitFor("keylog's ready line", () => {
        try {
          return readFileSync(`${dir}/head.err`, "latin1").includes("ready");
        } catch {
          return false;
        }
      }, 30_000);
      // Secrets enough to pass head's 10 bytes, then one more handshake to meet the closed pipe.
      for (let i = 0; i < 2; i++) expect((await run([bin, "post", `https://127.0.0.1:${port}/echo`, cert.cert, "x"])).exitCode).toBe(0);
      const code = await Promise.race([sh.exited, Bun.sleep(10_000).then(() => "still running")]);
      expect(code).toBe(0);
      expect(readFileSync(`${dir}/head.err`, "latin1")).not.toContain("internal error");
    } finally {
      await server.stop();
    }
  }, 60_000);

  test("bad arguments and an output that cannot be written: one line, exit 2", async () => {
    const bad = await run([TAPWIRE, "keylog", "--nope"]);
    expect([bad.exitCode, bad.stderr.trim().split("\n").length]).toEqual([2, 1]);
    expect(bad.stderr).toStartWith("tapwire: ");
    const noDir = await run([TAPWIRE, "keylog", "-o", "/nonexistent-dir/keys.log"]);
    expect(noDir.exitCode).toBe(2);
    expect(noDir.stderr.trim().split("\n")).toEqual(["tapwire: -o /nonexistent-dir/keys.log: no such file"]);
  });
});
