// tapwire never captures itself, from either end of its own connections (its API's clients,
// tapwire watch, the Trayce push), and the Trayce push never wedges: batches bounded in bytes,
// a refused batch dropped after a few tries and counted. Also: serve answers `unavailable`
// until capture is attached, refuses requests addressed to it by another name or from
// another origin, stops on its first SIGINT every time, and every command has its --help.
// tapwire captures everything here (no --port filter): its own traffic must not appear.
import { describe, expect, test } from "bun:test";
import { createClient, ConnectError, Code } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { TapwireService } from "../../src/gen/tapwire/v1/service_pb.ts";
import { PEERS, TAPWIRE, PYTHON, freePort, requireRoot, run, startPeer, startServer, startTapwire, waitFor, type JsonFlow, type Peer } from "./harness.ts";

const CURL = "/usr/bin/curl";
const NODE = "/usr/bin/node";
requireRoot();

const api = (port: number, version: "1.1" | "2" = "1.1") => createClient(TapwireService, createConnectTransport({ baseUrl: `http://127.0.0.1:${port}`, httpVersion: version }));
const guiEvents = (p: Peer) => p.lines.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
const guiFlows = (p: Peer) => guiEvents(p).filter((e) => e.kind === "flow").map((e) => e.value);
const pathOf = (f: JsonFlow) => f.httpRequest?.path ?? f.grpcRequest?.path;

describe("tapwire's own connections are not captured", () => {
  test("serve --trayce: 5 s without traffic push nothing of the agent protocol; large flows are cut to fit and marked; a GUI that refuses for 2 s costs only its refused batches", async () => {
    const gui = await freePort();
    const site = await freePort();
    const apiPort = await freePort();
    const guiPeer = startPeer([NODE, `${PEERS}/trayce_gui.mjs`, String(gui)]);
    await guiPeer.waitLine((l) => l === "listening");
    const server = await startServer([PYTHON, `${PEERS}/echo_server.py`, String(site)], "127.0.0.1", site);
    const t = await startTapwire(["--listen", `127.0.0.1:${apiPort}`, "--trayce", `127.0.0.1:${gui}`], { command: "serve" });
    try {
      await guiPeer.waitLine((l) => l.includes('"agent_started"'));
      await Bun.sleep(5000);
      // The GUI saw the agent's calls (containers every second)...
      expect(guiEvents(guiPeer).filter((e) => e.kind === "containers").length).toBeGreaterThanOrEqual(3);
      // ... and not one of them as a flow, from either end; nor does the history hold one.
      expect(guiFlows(guiPeer).filter((f) => pathOf(f)?.startsWith("/api.TrayceAgent/"))).toEqual([]);
      const history = await api(apiPort).listFlows({ filter: { pathPrefix: "/api.TrayceAgent/" }, pageSize: 1000 });
      expect(history.flows).toEqual([]);

      // Two 1 MiB POSTs and a small GET: all three reach the GUI, the large ones cut to fit.
      const mib = `${(await import("node:os")).tmpdir()}/tapwire-1mib-${site}`;
      await Bun.write(mib, new Uint8Array(1 << 20).fill(0x61));
      for (const n of [1, 2]) expect((await run([CURL, "-sS", "-o", "/dev/null", "--data-binary", `@${mib}`, "-H", "Content-Type: application/octet-stream", `http://127.0.0.1:${site}/echo?big=${n}`])).exitCode).toBe(0);
      expect((await run([CURL, "-sS", "-o", "/dev/null", `http://127.0.0.1:${site}/text?small=1`])).exitCode).toBe(0);
      await waitFor("the three requests at the GUI, from both sides", () => ["/echo?big=1", "/echo?big=2", "/text?small=1"].every((p) => guiFlows(guiPeer).filter((f) => pathOf(f) === p).length === 2), 15000);
      for (const p of ["/echo?big=1", "/echo?big=2"]) {
        for (const req of guiFlows(guiPeer).filter((f) => pathOf(f) === p)) {
          const body = Buffer.from(req.httpRequest.payload, "base64");
          expect(body.length).toBeGreaterThan(900_000);
          expect(body.length).toBeLessThan(1 << 20);
          expect(body.every((b) => b === 0x61)).toBe(true);
          expect(req.httpRequest.headers["x-tapwire-truncated"].values[0]).toMatch(new RegExp(`^payload cut to ${body.length} of 1048576 bytes to fit a batch$`));
          const res = guiFlows(guiPeer).find((f) => f.uuid === req.uuid && f.response === "httpResponse");
          expect(res.httpResponse.status).toBe(200);
          expect(res.httpResponse.headers["x-tapwire-truncated"].values[0]).toMatch(/^payload cut to \d+ of 1048576 bytes to fit a batch$/);
        }
      }
      const small = guiFlows(guiPeer).find((f) => pathOf(f) === "/text?small=1");
      expect(small.httpRequest.headers["x-tapwire-truncated"]).toBeUndefined();

      // The GUI refuses everything for 2 s: flows made meanwhile are refused (after a few
      // tries), counted, said once; flows after it are delivered.
      guiPeer.send("refuse 2000");
      await Bun.sleep(100);
      for (let i = 0; i < 3; i++) await run([CURL, "-sS", "-o", "/dev/null", `http://127.0.0.1:${site}/text?refused=${i}`]);
      await waitFor("a refused batch", () => guiEvents(guiPeer).some((e) => e.kind === "refused"), 5000);
      await Bun.sleep(2500);
      await run([CURL, "-sS", "-o", "/dev/null", `http://127.0.0.1:${site}/text?after=1`]);
      await waitFor("the flows after the refusal", () => guiFlows(guiPeer).filter((f) => pathOf(f) === "/text?after=1").length === 2, 10000);
      const stats = await api(apiPort).getStats({});
      expect(stats.trayceRefused).toBeGreaterThan(0n);
      expect(stats.trayceTruncated).toBe(8n); // two POSTs, from both sides, a request and a response each
      expect(stats.trayceSent).toBeGreaterThanOrEqual(8n);
      const said = t.stderr.filter((l) => l.startsWith("trayce: the GUI refused a batch"));
      expect(said).toEqual([expect.stringMatching(/^trayce: the GUI refused a batch of \d+ flows \(Internal: the GUI is refusing flows for a while\); dropped after 3 tries/)]);
      const summary = await t.stop();
      expect(summary).toMatch(/; trayce: \d+ flows sent, 0 dropped \(queue full\), [1-9]\d* refused by the GUI, 8 cut to fit$/);
      // Still no flow of the agent protocol, after all that.
      expect(guiFlows(guiPeer).filter((f) => pathOf(f)?.startsWith("/api.TrayceAgent/"))).toEqual([]);
    } finally {
      if (t.proc.exitCode === null) await t.stop();
      await guiPeer.stop();
      await server.stop();
    }
  }, 90_000);

  test("200 GetStats calls and a running tapwire watch: no flow of tapwire's own API anywhere", async () => {
    const apiPort = await freePort();
    const site = await freePort();
    const server = await startServer([PYTHON, `${PEERS}/echo_server.py`, String(site)], "127.0.0.1", site);
    const t = await startTapwire(["--listen", `127.0.0.1:${apiPort}`], { command: "serve" });
    const watch = startPeer([TAPWIRE, "watch", "--server", `http://127.0.0.1:${apiPort}`, "--json"]);
    try {
      const abort = new AbortController();
      const live: JsonFlow[] = [];
      const subscription = (async () => {
        try {
          for await (const ev of api(apiPort, "2").watchFlows({}, { signal: abort.signal })) if (ev.event.case === "flow") live.push(ev.event.value);
        } catch {}
      })();
      await Bun.sleep(300);
      const h1 = api(apiPort, "1.1");
      const grpc = createClient(TapwireService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${apiPort}` }));
      for (let i = 0; i < 100; i++) {
        await h1.getStats({});
        await grpc.getStats({});
      }
      // Traffic that is not tapwire's is captured all the while: the control.
      expect((await run([CURL, "-sS", "-o", "/dev/null", `http://127.0.0.1:${site}/text?control=1`])).exitCode).toBe(0);
      await waitFor("the control flow in watch's output", () => watch.lines.some((l) => l.includes("/text?control=1")), 10000);
      await Bun.sleep(500);
      const own = (path: string | undefined) => !!path?.startsWith("/tapwire.v1.TapwireService/");
      expect(live.filter((f) => own(f.request?.path)).length).toBe(0);
      expect(live.filter((f) => f.request?.path === "/text?control=1").length).toBe(2);
      const listed = await h1.listFlows({ filter: { pathPrefix: "/tapwire.v1.TapwireService/" }, pageSize: 1000 });
      expect(listed.flows.length).toBe(0);
      const watched = watch.lines.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
      expect(watched.filter((f) => own(f.request?.path))).toEqual([]);
      expect(t.flows.length).toBe(0); // serve prints no flows; its own stdout stays empty
      abort.abort();
      await subscription;
    } finally {
      await watch.stop();
      await t.stop();
      await server.stop();
    }
  }, 60_000);
});

describe("serve's API", () => {
  test("a call before capture is attached is unavailable, not internal; after ready it works", async () => {
    const port = await freePort();
    const p = Bun.spawn([TAPWIRE, "serve", "--listen", `127.0.0.1:${port}`, "--port", "1"], { stdout: "ignore", stderr: "pipe" });
    let err = "";
    const reading = (async () => {
      for await (const c of p.stderr) err += new TextDecoder().decode(c);
    })();
    const codes: string[] = [];
    try {
      const client = api(port);
      while (!err.includes("ready")) {
        if (p.exitCode !== null) throw new Error(`serve exited: ${err}`);
        try {
          await client.getStats({});
          if (!err.includes("ready")) codes.push("ok-before-ready");
        } catch (e) {
          const c = ConnectError.from(e);
          // Nothing listens yet: connection refused (unavailable too, from the client).
          codes.push(c.rawMessage.includes("capture is not attached") ? `unavailable:${Code[c.code]}` : c.code === Code.Unavailable ? "refused" : `other:${Code[c.code]}:${c.rawMessage}`);
        }
        await Bun.sleep(5);
      }
      expect(codes.filter((c) => c.startsWith("other") || c === "ok-before-ready")).toEqual([]);
      expect(codes).toContain("unavailable:Unavailable");
      const stats = await client.getStats({});
      expect(stats.flows).toBe(0n);
    } finally {
      p.kill("SIGINT");
      expect(await p.exited).toBe(0);
      await reading;
    }
  }, 30_000);

  test("requests addressed to it by another name, or from another origin, are refused (DNS rebinding, CSRF)", async () => {
    const port = await freePort();
    const t = await startTapwire(["--listen", `127.0.0.1:${port}`, "--port", "1"], { command: "serve" });
    try {
      /** [status, body] */
      const call = async (headers: string[]) => {
        const r = await run([CURL, "-sS", "-w", "\n%{http_code}", "-X", "POST", "-H", "Content-Type: application/json", ...headers.flatMap((h) => ["-H", h]), "-d", "{}", `http://127.0.0.1:${port}/tapwire.v1.TapwireService/GetStats`]);
        const out = new TextDecoder().decode(r.stdout);
        return [out.slice(out.lastIndexOf("\n") + 1), out.slice(0, out.lastIndexOf("\n"))];
      };
      const status = async (headers: string[]) => (await call(headers))[0];
      expect(await status([])).toBe("200");
      expect(await status([`Host: localhost:${port}`])).toBe("200");
      expect(await status([`Origin: http://127.0.0.1:${port}`])).toBe("200");
      expect(await status([`Host: attacker.example:${port}`])).toBe("403");
      expect(await status([`Host: 127.0.0.1:${port + 1}`])).toBe("403");
      expect(await status(["Origin: https://attacker.example"])).toBe("403");
      expect(await status(["Origin: null"])).toBe("403");
      const [, body] = await call(["Origin: https://attacker.example"]);
      expect(body).toBe('Origin "https://attacker.example" is not this server (cross-origin requests are refused)\n');
    } finally {
      await t.stop();
    }
  });
});

describe("signals and help", () => {
  test("an idle serve stops on its first SIGINT, 50 times in a row, each within 2 s with exit 0", async () => {
    for (let i = 0; i < 50; i++) {
      const port = await freePort();
      const p = Bun.spawn([TAPWIRE, "serve", "--listen", `127.0.0.1:${port}`, "--port", "1", "--no-hold"], { stdout: "ignore", stderr: "pipe" });
      let err = "";
      const reading = (async () => {
        for await (const c of p.stderr) err += new TextDecoder().decode(c);
      })();
      await waitFor("ready", () => {
        if (p.exitCode !== null) throw new Error(`serve exited: ${err}`);
        return err.includes("ready");
      });
      await Bun.sleep(i % 5 === 0 ? 300 : 20);
      const t0 = performance.now();
      p.kill("SIGINT");
      const code = await Promise.race([p.exited, Bun.sleep(2000).then(() => "still running")]);
      if (code !== 0) p.kill("SIGKILL");
      expect([i, code]).toEqual([i, 0]);
      expect(performance.now() - t0).toBeLessThan(2000);
      await reading;
      expect(err).toMatch(/\ntapwire: 0 flows from \d+ events/);
    }
  }, 240_000);

  test("every command's --help is its own usage, with one example; an unknown command suggests the nearest", async () => {
    for (const c of ["capture", "serve", "watch", "containers", "gen", "keylog", "doctor", "inspect"]) {
      for (const form of [[c, "--help"], ["help", c], [c, "-h"]]) {
        const r = await run([TAPWIRE, ...form]);
        const out = new TextDecoder().decode(r.stdout);
        expect([form.join(" "), r.exitCode, r.stderr]).toEqual([form.join(" "), 0, ""]);
        expect(out).toStartWith(`usage: tapwire ${c === "capture" ? "[capture]" : c}`);
        expect(out).toContain("\nexample:\n");
      }
    }
    const general = new TextDecoder().decode((await run([TAPWIRE, "--help"])).stdout);
    expect(general).toStartWith("tapwire — see the HTTP traffic");
    for (const [typed, meant] of [["serv", "serve"], ["captur", "capture"], ["contaners", "containers"], ["wach", "watch"]]) {
      const r = await run([TAPWIRE, typed!]);
      expect([r.exitCode, r.stderr]).toEqual([2, `tapwire: unknown command "${typed}" (did you mean ${meant}?): tapwire --help lists the commands\n`]);
    }
    const far = await run([TAPWIRE, "frobnicate", "--help"]);
    expect([far.exitCode, far.stderr]).toEqual([2, 'tapwire: unknown command "frobnicate": tapwire --help lists the commands\n']);
  }, 60_000);
});
