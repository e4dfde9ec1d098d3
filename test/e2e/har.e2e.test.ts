// HAR export end to end: `capture --har`, `watch --har` and serve's GET /har, with real curl
// against the Python test server on loopback. Each file or download is validated against the
// HAR 1.2 schema, holds exactly the flows tapwire printed (the same entries the converter makes
// of them), and the fields a user reads are checked one by one.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { fromJson } from "@bufbuild/protobuf";
import { FlowSchema } from "../../src/gen/tapwire/v1/flow_pb.ts";
import { flowToHarEntry } from "../../src/sinks/har.ts";
import { harProblems } from "../support/har-validate.ts";
import { PEERS, PYTHON, TAPWIRE, freePort, requireRoot, run, startPeer, startServer, startTapwire, waitFor, type JsonFlow, type Peer } from "./harness.ts";

const CURL = "/usr/bin/curl";
const BODY = '{"name":"tapwire","items":[1,2,3]}';
const GZIP_SIZE = 3000;
let port: number;
let server: Peer;
let dir: string;

beforeAll(async () => {
  requireRoot();
  dir = mkdtempSync(`${tmpdir()}/tapwire-har-e2e-`);
  port = await freePort();
  server = await startServer([PYTHON, `${PEERS}/echo_server.py`, String(port), "127.0.0.1"], "127.0.0.1", port);
});
afterAll(async () => {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** What the test server's /gzip sends, decoded. */
function gzipText(size: number): string {
  const line = "tapwire sees every request and response.\n";
  return line.repeat(Math.ceil(size / line.length) + 1).slice(0, size);
}

/** A JSON POST to /echo and a GET of gzip'ed text; the curl pids. */
async function traffic(tag: string): Promise<{ post: number; gzip: number }> {
  const post = await run([CURL, "-sS", "-o", "/dev/null", "-H", "Content-Type: application/json", "--data-binary", BODY, `http://127.0.0.1:${port}/echo?tag=${tag}`]);
  const gzip = await run([CURL, "-sS", "-o", "/dev/null", `http://127.0.0.1:${port}/gzip?size=${GZIP_SIZE}&tag=${tag}`]);
  expect([post.exitCode, gzip.exitCode]).toEqual([0, 0]);
  return { post: post.pid, gzip: gzip.pid };
}

/** The fields a user reads, of the two flows `traffic` makes. */
function expectTrafficEntries(entries: any[], tag: string, pids?: { post: number; gzip: number }) {
  const post = entries.find((e) => e.request.url === `http://127.0.0.1:${port}/echo?tag=${tag}`);
  const gz = entries.find((e) => e.request.url === `http://127.0.0.1:${port}/gzip?size=${GZIP_SIZE}&tag=${tag}`);
  expect(post).toBeDefined();
  expect(gz).toBeDefined();
  expect(post.request).toMatchObject({ method: "POST", httpVersion: "HTTP/1.1", bodySize: BODY.length, postData: { mimeType: "application/json", text: BODY }, queryString: [{ name: "tag", value: tag }] });
  expect(post.request.headers.map((h: any) => h.name)).toEqual(["Host", "User-Agent", "Accept", "Content-Type", "Content-Length"]);
  expect(post.response).toMatchObject({ status: 200, statusText: "OK", httpVersion: "HTTP/1.1", bodySize: BODY.length, content: { size: BODY.length, mimeType: "application/json", text: BODY } });
  expect(post.response.content.encoding).toBeUndefined();
  const text = gzipText(GZIP_SIZE);
  expect(gz.request).toMatchObject({ method: "GET", bodySize: 0 });
  expect(gz.request.postData).toBeUndefined();
  expect(gz.response.content).toMatchObject({ size: GZIP_SIZE, mimeType: "text/plain", text, _decodedEncoding: "gzip" });
  expect(gz.response.content.compression).toBe(GZIP_SIZE - gz.response.bodySize);
  expect(gz.response.bodySize).toBeLessThan(GZIP_SIZE / 4);
  for (const e of [post, gz]) {
    expect(e).toMatchObject({ serverIPAddress: "127.0.0.1", _protocol: "http1", _role: "client", _serverAddress: `127.0.0.1:${port}`, _process: { comm: "curl", exe: CURL } });
    expect(e.connection).toMatch(/^\d+$/);
    expect(e.time).toBeGreaterThan(0);
    expect(e.timings).toEqual({ blocked: -1, dns: -1, connect: -1, ssl: -1, send: 0, wait: e.time, receive: 0 });
    expect(Math.abs(Date.parse(e.startedDateTime) - Date.now())).toBeLessThan(60_000);
  }
  if (pids) expect([post._process.pid, gz._process.pid]).toEqual([pids.post, pids.gzip]);
}

/** The converter's entries for flows printed as canonical JSON. */
const entriesOf = (flows: JsonFlow[]) => JSON.parse(JSON.stringify(flows.map((f) => flowToHarEntry(fromJson(FlowSchema, f)))));

const readHar = (path: string) => {
  const doc = JSON.parse(readFileSync(path, "utf8"));
  expect(harProblems(doc)).toEqual([]);
  expect(doc.log.creator).toEqual({ name: "tapwire", version: "0.1.0" });
  return doc;
};

describe("capture --har", () => {
  test("the file holds every flow capture printed, as HAR 1.2, after SIGINT", async () => {
    const file = `${dir}/capture.har`;
    const tapwire = await startTapwire(["--port", String(port), "--comm", "curl", "--har", file]);
    // Valid from the start, before any flow.
    expect(readHar(file).log.entries).toEqual([]);
    const pids = await traffic("cap");
    await tapwire.waitForFlows(() => true, 2);
    await tapwire.stop();
    const doc = readHar(file);
    expect(doc.log.entries).toEqual(entriesOf(tapwire.flows));
    expect(doc.log.entries).toHaveLength(2);
    expectTrafficEntries(doc.log.entries, "cap", pids);
  });

  test("a full disk ends capture with one line and exit code 1; the file keeps what was written, valid", async () => {
    const mnt = `${dir}/small`;
    mkdirSync(mnt);
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=128k", "tapwire-har-e2e", mnt]);
    try {
      const file = `${mnt}/full.har`;
      const tapwire = await startTapwire(["--port", String(port), "--comm", "curl", "--har", file]);
      await traffic("small");
      await tapwire.waitForFlows(() => true, 2);
      const big = await run([CURL, "-sS", "-o", "/dev/null", `http://127.0.0.1:${port}/big?size=300000`]);
      expect(big.exitCode).toBe(0);
      const code = await Promise.race([tapwire.proc.exited, Bun.sleep(5000).then(() => "still running")]);
      expect(code).toBe(1);
      await waitFor("the last line", () => tapwire.stderr.some((l) => l.startsWith("tapwire: --har ")));
      expect(tapwire.stderr.filter((l) => l.startsWith("tapwire: --har "))).toEqual([`tapwire: --har ${file}: no space left on the device; writing stopped after 2 flows (the file holds them, valid)`]);
      const doc = readHar(file);
      expectTrafficEntries(doc.log.entries, "small");
      expect(doc.log.entries).toHaveLength(2);
    } finally {
      execFileSync("umount", [mnt]);
    }
  });

  test("SIGKILL mid-run: the file parses and validates, with the flows handed to its writer", async () => {
    const file = `${dir}/killed.har`;
    const tapwire = await startTapwire(["--port", String(port), "--comm", "curl", "--har", file]);
    await traffic("killed");
    // Large responses still coming when it is killed.
    const load = Promise.all(Array.from({ length: 8 }, () => run([CURL, "-sS", "-o", "/dev/null", `http://127.0.0.1:${port}/big?size=400000`])));
    await tapwire.waitForFlows(() => true, 4);
    tapwire.proc.kill("SIGKILL");
    await tapwire.proc.exited;
    await load;
    const first = readHar(file).log.entries.length;
    await Bun.sleep(300); // its writer writes what it was given, then ends
    const doc = readHar(file);
    expect(doc.log.entries.length).toBeGreaterThanOrEqual(Math.max(first, 2));
    expectTrafficEntries(doc.log.entries, "killed");
  });

  test("a path that cannot be written is one line and exit code 2, before anything starts", async () => {
    for (const [path, why] of [
      [`${dir}/no/such/dir/x.har`, "no such file"],
      [dir, "a directory, not a file"],
    ]) {
      const r = await run([TAPWIRE, "capture", "--har", path!]);
      expect([r.exitCode, r.stderr]).toEqual([2, `tapwire: --har ${path}: ${why}\n`]);
    }
    const r = await run([TAPWIRE, "capture", "--har"]);
    expect([r.exitCode, r.stderr]).toEqual([2, "tapwire: Option '--har <value>' argument missing\n"]);
  });
});

describe("serve: GET /har, and watch --har", () => {
  let api: number;
  let serve: Awaited<ReturnType<typeof startTapwire>>;
  const TOKEN = "har-s3cret";
  const base = () => `http://127.0.0.1:${api}`;

  beforeAll(async () => {
    api = await freePort();
    serve = await startTapwire(["--listen", `127.0.0.1:${api}`, "--token", TOKEN, "--port", String(port), "--comm", "curl"], { command: "serve" });
  }, 60_000);
  afterAll(async () => {
    await serve?.stop();
  });

  test("watch --har writes the flows it is sent; SIGINT leaves the file valid", async () => {
    const file = `${dir}/watch.har`;
    const watch = startPeer([TAPWIRE, "watch", "--server", base(), "--token", TOKEN, "--json", "--har", file]);
    try {
      await waitFor("watch to connect", () => watch.errLines.some((l) => l.startsWith("watching")));
      await Bun.sleep(200); // the subscription is made once the stream is open
      const pids = await traffic("watch");
      await waitFor("two flows in watch's output", () => watch.lines.filter((l) => l.includes("tag=watch")).length >= 2);
      watch.proc.kill("SIGINT");
      expect(await watch.proc.exited).toBe(0);
      const flows = watch.lines.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
      const doc = readHar(file);
      expect(doc.log.entries).toEqual(entriesOf(flows));
      expectTrafficEntries(doc.log.entries, "watch", pids);
    } finally {
      await watch.stop();
    }
  });

  test("the history as one HAR download: 401 without the token, 200 with it, oldest first", async () => {
    await traffic("serve");
    const url = `${base()}/har`;
    await waitFor("the flows in the history", async () => {
      const r = await fetch(url, { headers: { authorization: `Bearer ${TOKEN}` } });
      return (await r.text()).includes("tag=serve");
    });
    const none = await fetch(url);
    expect([none.status, await none.text()]).toEqual([401, "a valid bearer token is required (Authorization: Bearer TOKEN)\n"]);
    const wrong = await fetch(url, { headers: { authorization: "Bearer nope" } });
    expect(wrong.status).toBe(401);
    const r = await fetch(url, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toBe("application/json");
    expect(r.headers.get("content-disposition")).toMatch(/^attachment; filename="tapwire-\d{8}T\d{6}Z\.har"$/);
    const doc = (await r.json()) as any;
    expect(harProblems(doc)).toEqual([]);
    expect(doc.log.creator).toEqual({ name: "tapwire", version: "0.1.0" });
    expectTrafficEntries(doc.log.entries, "serve");
    // Oldest first: the watch test's flows came before these.
    const urls: string[] = doc.log.entries.map((e: any) => e.request.url);
    const at = (s: string) => urls.findIndex((u) => u.includes(s));
    expect(at("/echo?tag=watch")).toBeGreaterThanOrEqual(0);
    expect(at("/echo?tag=watch")).toBeLessThan(at("/gzip?size=3000&tag=watch"));
    expect(at("/gzip?size=3000&tag=watch")).toBeLessThan(at("/echo?tag=serve"));
    expect(at("/echo?tag=serve")).toBeLessThan(at("/gzip?size=3000&tag=serve"));
    const starts = doc.log.entries.map((e: any) => Date.parse(e.startedDateTime));
    expect(starts).toEqual([...starts].sort((a, b) => a - b));
    // curl as a browser's download would save it.
    const saved = await run([CURL, "-sS", "-OJ", "--output-dir", dir, "-H", `Authorization: Bearer ${TOKEN}`, url]);
    expect(saved.exitCode).toBe(0);
    const name = readdirSync(dir).find((n) => /^tapwire-\d{8}T\d{6}Z\.har$/.test(n));
    expect(name).toBeDefined();
    expect(harProblems(JSON.parse(readFileSync(`${dir}/${name}`, "utf8")))).toEqual([]);
  });

  test("with a filter: the flows it names; a filter that does not parse is 400 with its message", async () => {
    const auth = { authorization: `Bearer ${TOKEN}` };
    const r = await fetch(`${base()}/har?filter=${encodeURIComponent('method == "POST"')}`, { headers: auth });
    expect(r.status).toBe(200);
    const doc = (await r.json()) as any;
    expect(harProblems(doc)).toEqual([]);
    const methods: string[] = doc.log.entries.map((e: any) => e.request.method);
    expect(methods).toContain("POST");
    // The same expression language as --filter and the API: only POSTs, and a filter that does
    // not parse is refused with the parser's message.
    expect(new Set(methods)).toEqual(new Set(["POST"]));
    const all = (await (await fetch(`${base()}/har`, { headers: auth })).json()) as any;
    expect(new Set(all.log.entries.map((e: any) => e.request.method))).toEqual(new Set(["POST", "GET"]));
    const bad = await fetch(`${base()}/har?filter=${encodeURIComponent("((( method")}`, { headers: auth });
    expect(bad.status).toBe(400);
    expect(await bad.text()).toBe('filter: at column 11: expected ")" to close the "(" at column 3, found the end of the filter\n');
  });

  test("a request naming another host is refused (403), token or not", async () => {
    const r = await run([CURL, "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Host: evil.example", "-H", `Authorization: Bearer ${TOKEN}`, `${base()}/har`]);
    expect(new TextDecoder().decode(r.stdout)).toBe("403");
    const cross = await fetch(`${base()}/har`, { headers: { authorization: `Bearer ${TOKEN}`, origin: "http://evil.example" } });
    expect(cross.status).toBe(403);
  });
});
