// What a user sees of `tapwire capture` beyond --json: the terminal view, -v, the process
// filters, and SIGTERM. Real curl against Python's http.server on loopback.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { PYTHON, freePort, requireRoot, run, startServer, startTapwire, waitFor, type Peer, NO_DROPS_END } from "./harness.ts";

const CURL = "/usr/bin/curl";
const content = "tapwire terminal view\n".repeat(10); // 220 bytes
let port: number;
let server: Peer;

beforeAll(async () => {
  requireRoot();
  const dir = mkdtempSync(`${tmpdir()}/tapwire-cli-`);
  writeFileSync(`${dir}/page.txt`, content);
  port = await freePort();
  server = await startServer([PYTHON, "-m", "http.server", String(port), "--bind", "127.0.0.1", "--directory", dir], "127.0.0.1", port);
});
afterAll(async () => {
  await server?.stop();
});

async function curl(path: string) {
  const r = await run([CURL, "-sS", "-o", "/dev/null", `http://127.0.0.1:${port}${path}`]);
  expect(r.exitCode).toBe(0);
  return r.pid;
}

describe("the terminal view", () => {
  test("a line per flow: time, method, URL, status, size, latency, process, role; SIGTERM exits 0", async () => {
    const tapwire = await startTapwire(["--port", String(port)], { json: false });
    const pid = await curl("/page.txt?view=line");
    const lines = await waitFor("two flow lines", () => (tapwire.stdout.length >= 2 ? tapwire.stdout.slice() : undefined));
    const summary = await tapwire.stop("SIGTERM");
    expect(summary).toMatch(new RegExp(`^tapwire: 2 flows from \\d+ events; ${NO_DROPS_END}`));
    expect(tapwire.stdout).toHaveLength(2); // piped: no colour codes, no extra lines
    const url = `http://127.0.0.1:${port}/page.txt?view=line`;
    const line = (comm: string, who: number, role: string) =>
      new RegExp(`^\\d\\d:\\d\\d:\\d\\d\\.\\d{3} GET ${url.replace(/[.?]/g, "\\$&")} 200 OK 220 B (\\d\\.\\d\\d|\\d{2,}) ms ${comm}\\[${who}\\] ${role}$`);
    expect(lines.find((l) => l.includes(" client"))).toMatch(line("curl", pid, "client"));
    expect(lines.find((l) => l.includes(" server"))).toMatch(line("python3", server.proc.pid, "server"));
  });

  test("-v adds the request and response heads, the body and the connection", async () => {
    const tapwire = await startTapwire(["--port", String(port), "--comm", "curl", "-v"], { json: false });
    await curl("/page.txt");
    await waitFor("the connection line", () => tapwire.stdout.some((l) => l.startsWith("conn ")));
    await tapwire.stop();
    const text = tapwire.stdout.join("\n");
    expect(text).toContain(`> GET /page.txt HTTP/1.1\n> Host: 127.0.0.1:${port}\n> User-Agent: curl/`);
    expect(text).toContain("\n< HTTP/1.0 200 OK\n< Server: SimpleHTTP/");
    expect(text).toContain("< Content-Length: 220\n");
    expect(text).toContain("\n" + content.trimEnd() + "\n");
    expect(text).toMatch(new RegExp(`\\nconn \\d+ 127\\.0\\.0\\.1:\\d+ -> 127\\.0\\.0\\.1:${port} exe /usr/bin/curl\\n`));
  });
});

describe("filters", () => {
  test("--comm keeps only that program's flows; --pid only that process's", async () => {
    const byComm = await startTapwire(["--comm", "curl", "--port", String(port)]);
    const byPid = await startTapwire(["--pid", String(server.proc.pid)]);
    const pids = [await curl("/page.txt?n=1"), await curl("/page.txt?n=2")];
    await byComm.waitForFlows(() => true, 2);
    await byPid.waitForFlows(() => true, 2);
    // Anything else in flight has had its chance to show up before stopping.
    await Bun.sleep(200);
    await byComm.stop();
    await byPid.stop();
    expect(byComm.flows.map((f) => [f.connection.process.comm, f.connection.process.pid, f.connection.role, f.request.path])).toEqual([
      ["curl", pids[0], "ROLE_CLIENT", "/page.txt?n=1"],
      ["curl", pids[1], "ROLE_CLIENT", "/page.txt?n=2"],
    ]);
    expect(byPid.flows.map((f) => [f.connection.process.comm, f.connection.process.pid, f.connection.role, f.request.path])).toEqual([
      ["python3", server.proc.pid, "ROLE_SERVER", "/page.txt?n=1"],
      ["python3", server.proc.pid, "ROLE_SERVER", "/page.txt?n=2"],
    ]);
  });
});

describe("--redact", () => {
  test("credential header values are replaced in the terminal view and in JSON; other headers are kept", async () => {
    const headers = ["-H", "Authorization: Bearer hunter2", "-H", "Cookie: session=abc", "-H", "X-Api-Key: k-123", "-H", "X-Kept: visible"];
    for (const json of [false, true]) {
      const tapwire = await startTapwire(["--port", String(port), "--redact", "--redact-header", "x-api-key", ...(json ? [] : ["-v", "--no-color"])], { json });
      const r = await run([CURL, "-sS", "-o", "/dev/null", ...headers, `http://127.0.0.1:${port}/page.txt?redact=${json}`]);
      expect(r.exitCode).toBe(0);
      if (json) {
        const flows = await tapwire.waitForFlows(() => true, 2);
        for (const f of flows) {
          const h = Object.fromEntries(f.request.headers.map((x: { name: string; value: string }) => [x.name, x.value]));
          expect([h.Authorization, h.Cookie, h["X-Api-Key"], h["X-Kept"]]).toEqual(["[redacted]", "[redacted]", "[redacted]", "visible"]);
        }
      } else {
        await waitFor("the verbose request headers", () => tapwire.stdout.filter((l) => l === "> X-Kept: visible").length >= 2);
        const out = tapwire.stdout.join("\n");
        expect(out).not.toContain("hunter2");
        expect(out).not.toContain("session=abc");
        expect(out).not.toContain("k-123");
        expect(tapwire.stdout.filter((l) => l === "> Authorization: [redacted]").length).toBe(2);
      }
      await tapwire.stop();
    }
  }, 60_000);
});
