// Containers end to end: real containers under podman (its Docker-compatible API on a unix
// socket), each with --network host so that all traffic stays on loopback. Python servers in
// containers are requested from the host with curl; tapwire runs on the host with real BPF.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, readlinkSync, statSync } from "node:fs";
import { ensurePodman, IMAGE, type Podman } from "../support/podman.ts";
import { PEERS, TAPWIRE, freePort, canConnect, requireRoot, run, startServer, startTapwire, waitFor, type JsonFlow, type Tapwire, PYTHON, fromB64 } from "./harness.ts";
import { makeCert, type Cert } from "./tls-setup.ts";
import { createDockerClient } from "../../src/procs/docker.ts";
import { goBinary } from "../support/go-build.ts";
import { dirname } from "node:path";

const CURL = "/usr/bin/curl";
let pm: Podman;
let cert: Cert;
const started: string[] = [];
const running: Tapwire[] = [];

beforeAll(async () => {
  requireRoot();
  pm = await ensurePodman();
  cert = await makeCert();
}, 600_000);

// Each test starts from no test containers: what one test started cannot be seen by the next.
function removeContainers() {
  for (const name of started.splice(0)) {
    try {
      pm.run(["rm", "-f", "-t", "0", name]);
    } catch {}
  }
}

afterEach(async () => {
  for (const t of running.splice(0)) if (t.proc.exitCode === null) t.proc.kill("SIGKILL");
  removeContainers();
});

afterAll(removeContainers);

interface Box {
  name: string;
  id: string;
  port: number;
  /** The host pid of the server process (python3) inside it. */
  pid: number;
}

/** A Python server in a container, on 127.0.0.1:port of the host's network. */
async function runContainer(name: string, kind: "http" | "https" | "go", port?: number): Promise<Box> {
  port ??= await freePort();
  try {
    pm.run(["rm", "-f", "-t", "0", name]);
  } catch {}
  const cmd =
    kind === "http"
      ? ["python3", "/peers/echo_server.py", String(port)]
      : kind === "https"
        ? ["python3", "/peers/https_echo.py", String(port), "/tls/cert.pem", "/tls/key.pem"]
        : // The Go program is copied into the container first: its own file, not the host's.
          ["sh", "-c", `cp /go/gohttps-plain /usr/local/bin/gohttps && exec /usr/local/bin/gohttps server ${port} /tls/cert.pem /tls/key.pem`];
  const goDir = dirname(goBinary("plain"));
  started.push(name);
  const id = pm.run(["run", "-d", "--init", "--network", "host", "--name", name, "-v", `${PEERS}:/peers:ro`, "-v", `${cert.dir}:/tls:ro`, "-v", `${goDir}:/go:ro`, IMAGE, ...cmd]).trim();
  await waitFor(`${name} to listen on ${port}`, () => canConnect("127.0.0.1", port), 20000);
  const pid = serverPid(id, kind === "go" ? "gohttps" : "python3");
  return { name, id, port, pid };
}

/** The server process of a container, found from the processes' cgroups. */
function serverPid(id: string, comm: string): number {
  for (const entry of require("node:fs").readdirSync("/proc") as string[]) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cgroup`, "latin1").includes(id) && readFileSync(`/proc/${entry}/comm`, "latin1").trim() === comm) return Number(entry);
    } catch {}
  }
  throw new Error(`no ${comm} process in container ${id}`);
}

async function curl(url: string, ...args: string[]) {
  const r = await run([CURL, "-sS", "--cacert", cert.cert, ...args, url]);
  if (r.exitCode !== 0) throw new Error(`curl ${url}: ${r.stderr}`);
  return { pid: r.pid, body: new TextDecoder().decode(r.stdout) };
}

async function tapwire(args: string[] = [], socket = pm.socket): Promise<Tapwire> {
  const t = await startTapwire(["--docker-socket", socket, ...args]);
  running.push(t);
  return t;
}

const isServerOf = (box: Box, path: string) => (f: JsonFlow) => f.connection.role === "ROLE_SERVER" && f.connection.process.pid === box.pid && f.request?.path === path;

/** Every field of a server flow from a container's echo server. */
function expectServerFlow(f: JsonFlow, box: Box, e: { path: string; tls: boolean; body: string; name?: string; image?: string; comm?: string }) {
  expect(f.protocol).toBe("PROTOCOL_HTTP1");
  expect(f.connection.role).toBe("ROLE_SERVER");
  expect(f.connection.process).toEqual({ pid: box.pid, comm: e.comm ?? "python3", exe: readlinkSync(`/proc/${box.pid}/exe`) });
  // Proto JSON leaves out empty strings: no name and image when the engine could not say.
  const name = e.name ?? box.name;
  const image = e.image ?? IMAGE;
  expect(f.connection.container).toEqual({ id: box.id, ...(name ? { name } : {}), ...(image ? { image } : {}) });
  expect(f.connection.tls ?? false).toBe(e.tls);
  expect(f.connection.destination).toEqual({ ip: "127.0.0.1", port: box.port });
  expect(f.connection.source.ip).toBe("127.0.0.1");
  expect(f.request.method).toBe("GET");
  expect(f.request.path).toBe(e.path);
  expect(f.request.authority).toBe(`127.0.0.1:${box.port}`);
  expect(f.response.status).toBe(200);
  expect(fromB64(f.response.body).toString()).toBe(e.body);
  expect(f.missing).toBeUndefined();
}

const TEXT = "hello from tapwire's test server\n";

/** Whether a line names a container's file: by name, or by short id when a process of a
 * container that just started execs before the engine has been asked about it. */
const namesBox = (line: string, box: Box) => line.includes(`(container ${box.name})`) || line.includes(`(container ${box.id.slice(0, 12)})`);

describe("the Docker Engine API client, against podman's", () => {
  test("list, inspect and the events of a container that starts and stops", async () => {
    const client = createDockerClient(pm.socket);
    const abort = new AbortController();
    const events: string[] = [];
    const following = (async () => {
      for await (const e of client.events(abort.signal)) if (e.name === "tw-client") events.push(`${e.action} ${e.id} ${e.image}`);
    })();
    await Bun.sleep(300);
    const box = await runContainer("tw-client", "http");
    const info = await client.inspect("tw-client");
    expect(info).toEqual({ id: box.id, name: "tw-client", image: IMAGE, pid: info!.pid, running: true, networkMode: "host", ip: "" });
    // The main pid is the container's init (--init), in the container's cgroup.
    expect(readFileSync(`/proc/${info!.pid}/cgroup`, "latin1")).toContain(`libpod-${box.id}`);
    expect((await client.list()).find((c) => c.id === box.id)).toEqual(info!);
    expect(await client.inspect("tw-no-such-container")).toBeUndefined();
    pm.run(["stop", "-t", "2", "tw-client"]);
    await waitFor("start and died events", () => events.includes(`start ${box.id} ${IMAGE}`) && events.includes(`die ${box.id} ${IMAGE}`), 15000);
    abort.abort();
    await following;
    // An engine that is not there: one DockerError naming the socket.
    await expect(createDockerClient("/run/tapwire-no-such.sock").list()).rejects.toThrow(/^\/run\/tapwire-no-such\.sock: /);
  }, 60_000);
});

describe("containers", () => {
  test("a container's HTTP server: its flows carry the container's id, name and image; the host's curl has none", async () => {
    const box = await runContainer("tw-http", "http");
    const t = await tapwire();
    const c = await curl(`http://127.0.0.1:${box.port}/text?http`);
    expect(c.body).toBe(TEXT);
    const [server] = await t.waitForFlows(isServerOf(box, "/text?http"), 1);
    expectServerFlow(server, box, { path: "/text?http", tls: false, body: TEXT });
    const [client] = await t.waitForFlows((f) => f.connection.process.pid === c.pid, 1);
    expect(client.connection.role).toBe("ROLE_CLIENT");
    expect(client.connection.container).toBeUndefined();
    expect(client.response.status).toBe(200);
    await t.stop();
  }, 60_000);

  test("a container's HTTPS server is read through the container's own libssl, probed within a second of its start", async () => {
    const t = await tapwire(["-v"]);
    const t0 = performance.now();
    const box = await runContainer("tw-https", "https");
    // The container's libssl is another file than the host's.
    const inside = statSync(`/proc/${box.pid}/root/usr/lib/x86_64-linux-gnu/libssl.so.3`);
    const host = statSync("/usr/lib/x86_64-linux-gnu/libssl.so.3");
    expect(`${inside.dev}:${inside.ino}`).not.toBe(`${host.dev}:${host.ino}`);
    const probedLine = await waitFor("the container's libssl to be probed", () =>
      t.stderr.find((l) => l.startsWith("tls: probing OpenSSL") && l.includes("libssl.so.3 (container ") && namesBox(l, box)),
    );
    const probedMs = performance.now() - t0;
    expect(probedLine).toMatch(/^tls: probing OpenSSL 3\.\d+\.\d+ in (\/usr)?\/lib\/x86_64-linux-gnu\/libssl\.so\.3 \(container /);
    // From `podman run` to attached: the container starting is most of it.
    expect(probedMs).toBeLessThan(1000 + 1000);
    const c = await curl(`https://127.0.0.1:${box.port}/text?first`);
    expect(c.body).toBe(TEXT);
    const [server] = await t.waitForFlows(isServerOf(box, "/text?first"), 1);
    expectServerFlow(server, box, { path: "/text?first", tls: true, body: TEXT });
    expect(server.connection.tlsLibrary).toMatch(/^OpenSSL 3\.\d+\.\d+$/);
    // `tapwire containers` says what is probed in it.
    const ls = await run([TAPWIRE, "containers", "--json", "--docker-socket", pm.socket]);
    expect(ls.exitCode).toBe(0);
    const listed = JSON.parse(new TextDecoder().decode(ls.stdout)).containers.find((x: JsonFlow) => x.container.id === box.id);
    expect(listed.container).toEqual({ id: box.id, name: "tw-https", image: IMAGE });
    expect(listed.networkMode).toBe("host");
    expect(listed.pids).toContain(box.pid);
    expect(listed.captured).toBe(true);
    // The library as the container's processes name it.
    expect(listed.tlsLibraries).toEqual([expect.stringMatching(/^OpenSSL 3\.\d+\.\d+ (\/usr)?\/lib\/x86_64-linux-gnu\/libssl\.so\.3$/)]);
    const table = await run([TAPWIRE, "containers", "--docker-socket", pm.socket]);
    const row = new TextDecoder().decode(table.stdout).split("\n").find((l) => l.startsWith(box.id.slice(0, 12)));
    expect(row).toMatch(new RegExp(`^${box.id.slice(0, 12)}\\s+tw-https\\s+${IMAGE.replace(/[.]/g, "\\.")}\\s+\\d+\\s+host\\s+OpenSSL 3`));
    await t.stop();
  }, 60_000);

  test("two containers of one image share its libssl: probed once, each one's HTTPS flows captured once, each with its own label", async () => {
    const t = await tapwire(["-v"]);
    const one = await runContainer("tw-twin-1", "https");
    const two = await runContainer("tw-twin-2", "https");
    for (const box of [one, two]) await curl(`https://127.0.0.1:${box.port}/text?${box.name}`);
    for (const box of [one, two]) {
      const [f] = await t.waitForFlows(isServerOf(box, `/text?${box.name}`), 1);
      expectServerFlow(f, box, { path: `/text?${box.name}`, tls: true, body: TEXT });
    }
    await Bun.sleep(500);
    await t.stop();
    const containerLibs = t.stderr.filter((l) => l.startsWith("tls: probing OpenSSL") && l.includes("(container "));
    expect(containerLibs.length).toBe(1);
    expect(t.flows.filter((f: JsonFlow) => f.connection.container).map((f: JsonFlow) => `${f.connection.container.name} ${f.request.path}`).sort()).toEqual(["tw-twin-1 /text?tw-twin-1", "tw-twin-2 /text?tw-twin-2"]);
  }, 60_000);

  test("a Go program in a container (its own copy of the executable) is probed through its root", async () => {
    const t = await tapwire(["-v"]);
    const box = await runContainer("tw-go", "go");
    const line = await waitFor("the container's Go program to be probed", () => t.stderr.find((l) => l.startsWith("tls: probing Go") && namesBox(l, box))).catch((e) => {
      throw new Error(`${e.message}; tapwire said: ${t.stderr.join("\n")}`);
    });
    expect(line).toStartWith(`tls: probing Go go1.19`);
    expect(line).toContain(" crypto/tls in /usr/local/bin/gohttps (container ");
    const c = await curl(`https://127.0.0.1:${box.port}/text`, "--http1.1");
    const [server] = await t.waitForFlows(isServerOf(box, "/text"), 1);
    expectServerFlow(server, box, { path: "/text", tls: true, body: c.body, comm: "gohttps" });
    expect(c.body.length).toBeGreaterThan(0);
    expect(server.connection.tlsLibrary).toMatch(/^Go go1\.\d+(\.\d+)? crypto\/tls$/);
    await t.stop();
  }, 120_000);

  test("--container NAME captures that container's traffic and no one else's; an id prefix chooses too", async () => {
    const a = await runContainer("tw-a", "http");
    const b = await runContainer("tw-b", "http");
    const hostPort = await freePort();
    const hostServer = await startServer([PYTHON, `${PEERS}/echo_server.py`, String(hostPort)], "127.0.0.1", hostPort);
    try {
      const t = await tapwire(["--container", "tw-a"]);
      expect(t.stderr.find((l) => l.startsWith("ready"))).toContain("; containers tw-a");
      await curl(`http://127.0.0.1:${b.port}/text?b`);
      await curl(`http://127.0.0.1:${hostPort}/text?host`);
      await curl(`http://127.0.0.1:${a.port}/text?a`);
      const [server] = await t.waitForFlows(isServerOf(a, "/text?a"), 1);
      expectServerFlow(server, a, { path: "/text?a", tls: false, body: TEXT });
      await Bun.sleep(500);
      await t.stop();
      // Nothing else: not tw-b, not the host's server, not the host's curl.
      expect(t.flows.map((f: JsonFlow) => `${f.connection.process.comm} ${f.connection.container?.name} ${f.request?.path}`)).toEqual(["python3 tw-a /text?a"]);

      const byId = await tapwire(["--container", b.id.slice(0, 12)]);
      await curl(`http://127.0.0.1:${a.port}/text?a2`);
      await curl(`http://127.0.0.1:${b.port}/text?b2`);
      const [bFlow] = await byId.waitForFlows(isServerOf(b, "/text?b2"), 1);
      expectServerFlow(bFlow, b, { path: "/text?b2", tls: false, body: TEXT });
      await Bun.sleep(500);
      await byId.stop();
      expect(byId.flows.map((f: JsonFlow) => f.connection.container?.name)).toEqual(["tw-b"]);
    } finally {
      await hostServer.stop();
    }
  }, 90_000);

  test("a container started after tapwire, chosen by name, is captured from its first request (HTTP and HTTPS)", async () => {
    const t = await tapwire(["--container", "tw-late", "--container", "tw-late-tls"]);
    expect(t.stderr.some((l) => l.includes("--container tw-late: no running container has this name or id yet"))).toBe(true);
    const box = await runContainer("tw-late", "http");
    await curl(`http://127.0.0.1:${box.port}/text?first`);
    const tls = await runContainer("tw-late-tls", "https");
    await curl(`https://127.0.0.1:${tls.port}/text?first-tls`);
    const [first] = await t.waitForFlows(isServerOf(box, "/text?first"), 1);
    expectServerFlow(first, box, { path: "/text?first", tls: false, body: TEXT });
    const [firstTls] = await t.waitForFlows(isServerOf(tls, "/text?first-tls"), 1);
    expectServerFlow(firstTls, tls, { path: "/text?first-tls", tls: true, body: TEXT });
    await t.stop();
    expect(t.flows.length).toBe(2);
  }, 90_000);

  test("a container chosen by name whose first act is a request (a job) is captured from that request", async () => {
    const port = await freePort();
    const hostServer = await startServer([PYTHON, `${PEERS}/echo_server.py`, String(port)], "127.0.0.1", port);
    try {
      const t = await tapwire(["--container", "tw-job"]);
      started.push("tw-job");
      const id = pm.run(["run", "--init", "--network", "host", "--name", "tw-job", IMAGE, "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", `http://127.0.0.1:${port}/text?job`]).trim();
      expect(id).toBe("200"); // curl's output: the container ran to its end
      const [client] = await t.waitForFlows((f) => f.request?.path === "/text?job", 1);
      const info = JSON.parse(pm.run(["inspect", "tw-job"]))[0];
      expect(client.connection.role).toBe("ROLE_CLIENT");
      expect(client.connection.process.comm).toBe("curl");
      expect(client.connection.container).toEqual({ id: info.Id, name: "tw-job", image: IMAGE });
      expect(client.connection.destination).toEqual({ ip: "127.0.0.1", port });
      expect([client.request.method, client.response.status, fromB64(client.response.body).toString()]).toEqual(["GET", 200, TEXT]);
      await Bun.sleep(500);
      await t.stop();
      // Only the job's side: not the host's server answering it.
      expect(t.flows.map((f: JsonFlow) => `${f.connection.process.comm} ${f.connection.role}`)).toEqual(["curl ROLE_CLIENT"]);
    } finally {
      await hostServer.stop();
    }
  }, 60_000);

  test("no engine: tapwire says so once, and container flows still carry the container's id", async () => {
    const box = await runContainer("tw-noapi", "http");
    const t = await tapwire([], "/run/tapwire-no-such-engine.sock");
    await curl(`http://127.0.0.1:${box.port}/text?noapi`);
    const [server] = await t.waitForFlows(isServerOf(box, "/text?noapi"), 1);
    expectServerFlow(server, box, { path: "/text?noapi", tls: false, body: TEXT, name: "", image: "" });
    // The engine is retried quietly: still one line after a few retries.
    await Bun.sleep(4500);
    const said = t.stderr.filter((l) => l.includes("container engine"));
    expect(said).toEqual([expect.stringMatching(/^tapwire: no container engine answers at \/run\/tapwire-no-such-engine\.sock \(.+\); containers are known by id only/)]);
    // ... and an id prefix still chooses a container.
    const byId = await tapwire(["--container", box.id.slice(0, 16)], "/run/tapwire-no-such-engine.sock");
    await curl(`http://127.0.0.1:${box.port}/text?noapi-filtered`);
    await byId.waitForFlows(isServerOf(box, "/text?noapi-filtered"), 1);
    await byId.stop();
    expect(byId.flows.length).toBe(1);
    await t.stop();
  }, 60_000);

  test("the engine going away mid-run: capture goes on with names kept, new containers get their id, names come back with it", async () => {
    const box = await runContainer("tw-away", "http");
    const t = await tapwire();
    await curl(`http://127.0.0.1:${box.port}/text?before`);
    expectServerFlow((await t.waitForFlows(isServerOf(box, "/text?before"), 1))[0], box, { path: "/text?before", tls: false, body: TEXT });
    pm.stopService();
    try {
      await curl(`http://127.0.0.1:${box.port}/text?during`);
      expectServerFlow((await t.waitForFlows(isServerOf(box, "/text?during"), 1))[0], box, { path: "/text?during", tls: false, body: TEXT });
      // A container that starts while the engine is away is known by its id.
      const late = await runContainer("tw-away-late", "http");
      await waitFor("tapwire to notice the engine is gone", () => t.stderr.some((l) => l.includes("the container engine went away")), 15000);
      await curl(`http://127.0.0.1:${late.port}/text?during-late`);
      expectServerFlow((await t.waitForFlows(isServerOf(late, "/text?during-late"), 1))[0], late, { path: "/text?during-late", tls: false, body: TEXT, name: "", image: "" });
      await pm.startService();
      await waitFor("tapwire to see the engine again", () => t.stderr.some((l) => l.includes("answers again")), 15000);
      await curl(`http://127.0.0.1:${late.port}/text?after`);
      expectServerFlow((await t.waitForFlows(isServerOf(late, "/text?after"), 1))[0], late, { path: "/text?after", tls: false, body: TEXT });
    } finally {
      await pm.startService();
    }
    await t.stop();
  }, 90_000);
});

describe("containers over the API", () => {
  const post = async (api: number, method: string, body: unknown) => {
    const r = await run([CURL, "-sS", "-X", "POST", "-H", "Content-Type: application/json", "-d", JSON.stringify(body), `http://127.0.0.1:${api}/tapwire.v1.TapwireService/${method}`]);
    return JSON.parse(new TextDecoder().decode(r.stdout));
  };

  test("ListContainers, SetCaptureFilter and WatchFlows by container; a bad choice is invalid_argument", async () => {
    const a = await runContainer("tw-api-a", "http");
    const b = await runContainer("tw-api-b", "http");
    const api = await freePort();
    const t = await startTapwire(["--docker-socket", pm.socket, "--listen", `127.0.0.1:${api}`], { command: "serve" });
    running.push(t);
    try {
      const listed = (await post(api, "ListContainers", {})).containers;
      const entry = listed.find((c: JsonFlow) => c.container.id === a.id);
      expect(entry).toMatchObject({ container: { id: a.id, name: "tw-api-a", image: IMAGE }, networkMode: "host", captured: true });
      expect(entry.pids).toContain(a.pid);

      // In the kernel: only tw-api-b from now on.
      expect((await post(api, "SetCaptureFilter", { filter: { containers: ["tw-api-b"] } })).filter).toEqual({ containers: ["tw-api-b"] });
      const after = (await post(api, "ListContainers", {})).containers;
      expect([after.find((c: JsonFlow) => c.container.id === a.id).captured ?? false, after.find((c: JsonFlow) => c.container.id === b.id).captured]).toEqual([false, true]);
      // A WatchFlows stream for tw-api-b's flows, through watch --container.
      const watch = Bun.spawn([TAPWIRE, "watch", "--server", `http://127.0.0.1:${api}`, "--json", "--container", b.id.slice(0, 12)], { stdout: "pipe", stderr: "pipe" });
      await Bun.sleep(500);
      await curl(`http://127.0.0.1:${a.port}/text?api-a`);
      await curl(`http://127.0.0.1:${b.port}/text?api-b`);
      const reader = watch.stdout.getReader();
      const { value } = await reader.read();
      watch.kill("SIGINT");
      const seen = JSON.parse(new TextDecoder().decode(value).split("\n")[0]!);
      expectServerFlow(seen, b, { path: "/text?api-b", tls: false, body: TEXT });
      await Bun.sleep(300);
      // The calls to the API before the filter were captured too; of the containers' traffic, only tw-api-b's.
      const history = (await post(api, "ListFlows", { filter: { pathPrefix: "/text" } })).flows.map((f: JsonFlow) => `${f.connection.container?.name} ${f.request.path}`);
      expect(history).toEqual(["tw-api-b /text?api-b"]);
      const byContainer = (await post(api, "ListFlows", { filter: { containers: ["tw-api-b"] } })).flows.map((f: JsonFlow) => f.request.path);
      expect(byContainer).toEqual(["/text?api-b"]);

      const bad = await post(api, "SetCaptureFilter", { filter: { containers: ["no such/container"] } });
      expect(bad.code).toBe("invalid_argument");
    } finally {
      await t.stop();
    }
  }, 60_000);

  test("Trayce's GUI is sent the containers, and only the flows of the one its user chose", async () => {
    const a = await runContainer("tw-trayce-a", "http");
    const b = await runContainer("tw-trayce-b", "http");
    const gui = await freePort();
    const peer = (await import("./harness.ts")).startPeer(["/usr/bin/node", `${PEERS}/trayce_gui.mjs`, String(gui), a.id.slice(0, 12)]);
    await peer.waitLine((l) => l === "listening");
    const t = await startTapwire(["--docker-socket", pm.socket, "--listen", `127.0.0.1:${await freePort()}`, "--trayce", `127.0.0.1:${gui}`], { command: "serve" });
    running.push(t);
    const events = () => peer.lines.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
    try {
      const containers = await waitFor("a container list with both", () => events().find((e) => e.kind === "containers" && e.value.some((c: JsonFlow) => c.name === "tw-trayce-b"))?.value);
      expect(containers.find((c: JsonFlow) => c.name === "tw-trayce-a")).toEqual({ id: a.id.slice(0, 12), name: "tw-trayce-a", image: IMAGE, ip: "", status: "running" });
      await curl(`http://127.0.0.1:${b.port}/text?trayce-b`);
      await curl(`http://127.0.0.1:${a.port}/text?trayce-a`);
      await waitFor("tw-trayce-a's request and response", () => events().filter((e) => e.kind === "flow").length >= 2);
      await Bun.sleep(500);
      const flows = events().filter((e) => e.kind === "flow").map((e) => e.value);
      expect(flows.map((f) => f.httpRequest?.path ?? `response ${f.httpResponse?.status}`)).toEqual(["/text?trayce-a", "response 200"]);
      expect(flows[0].uuid).toBe(flows[1].uuid);
    } finally {
      await t.stop();
      await peer.stop();
    }
  }, 60_000);
});
