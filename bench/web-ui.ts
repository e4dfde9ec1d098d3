// The web page of `tapwire serve` under a full history: wrk fills it with real flows (wrk →
// nginx on loopback, both sides captured), then Debian's chromium (puppeteer-core) opens the
// page and we measure how long until every flow of the history is listed, the page's JS heap
// then, how long scrolling a frame takes, and the time from a flow's capture (curl's exit) to
// its rows in the page. Figures, not pass/fail. Needs root, nginx, wrk, curl, chromium.
//
//   bun bench/web-ui.ts [--flows 100000] [--samples 20]
import { parseArgs } from "node:util";
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import puppeteer from "puppeteer-core";
import { TapwireService } from "../src/gen/tapwire/v1/service_pb.ts";
import { waitForListener } from "./support/listening.ts";

const { values } = parseArgs({ args: Bun.argv.slice(2), options: { flows: { type: "string", default: "100000" }, samples: { type: "string", default: "20" } } });
const FLOWS = Number(values.flows);
const ROOT = `${import.meta.dir}/..`;
const NGINX_PORT = 18080 + Math.floor(Math.random() * 1000);
const API_PORT = NGINX_PORT + 1000;

function startNginx() {
  const prefix = mkdtempSync(`${tmpdir()}/tapwire-bench-web-`);
  chmodSync(prefix, 0o755);
  mkdirSync(`${prefix}/html`);
  mkdirSync(`${prefix}/logs`);
  writeFileSync(`${prefix}/html/item.json`, JSON.stringify({ id: 1, name: "tapwire", tags: ["ebpf", "http", "grpc"], nested: { ok: true } }));
  writeFileSync(
    `${prefix}/nginx.conf`,
    `worker_processes 1;\npid ${prefix}/nginx.pid;\nerror_log ${prefix}/logs/error.log;\nevents { worker_connections 256; }\n` +
      `http { access_log off; keepalive_requests 1000000; types { application/json json; } server { listen 127.0.0.1:${NGINX_PORT}; root ${prefix}/html; } }\n`,
  );
  return Bun.spawn(["/usr/sbin/nginx", "-p", prefix, "-c", `${prefix}/nginx.conf`, "-g", "daemon off;"], { stdout: "inherit", stderr: "inherit" });
}

const nginx = startNginx();
const tapwire = Bun.spawn([`${ROOT}/dist/tapwire`, "serve", "--listen", `127.0.0.1:${API_PORT}`, "--port", String(NGINX_PORT), "--history", String(FLOWS), "--history-bytes", "4g"], { stdout: "ignore", stderr: "pipe" });
const browser = await puppeteer.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox"] });
try {
  await waitForListener(NGINX_PORT, "nginx");
  let err = "";
  const reading = (async () => {
    for await (const c of tapwire.stderr) err += new TextDecoder().decode(c);
  })();
  while (!err.includes("ready")) {
    if (tapwire.exitCode !== null) throw new Error(`tapwire exited: ${err}`);
    await Bun.sleep(50);
  }
  const api = createClient(TapwireService, createConnectTransport({ baseUrl: `http://127.0.0.1:${API_PORT}`, httpVersion: "1.1" }));
  // Each request is two flows: wrk's and nginx's.
  for (;;) {
    const s = await api.getStats({});
    if (s.historyFlows >= BigInt(FLOWS)) break;
    const p = Bun.spawn(["wrk", "-t1", "-c8", "-d1s", `http://127.0.0.1:${NGINX_PORT}/item.json`], { stdout: "ignore", stderr: "inherit" });
    await p.exited;
  }
  // wrk makes flows faster than capture turns them into flows: wait until it has caught up.
  for (let last = -1n; ; ) {
    await Bun.sleep(1000);
    const s = await api.getStats({});
    if (s.flows === last) break;
    last = s.flows;
  }
  const stats = await api.getStats({});
  console.log(`history: ${stats.historyFlows} flows, ${(Number(stats.historyBytes) / 1048576).toFixed(0)} MiB; drops: ${JSON.stringify(Object.fromEntries(Object.entries(stats.drops).map(([k, v]) => [k, Number(v)])))}`);

  // The same history read by a program (binary Connect, as the page does): what the API
  // alone costs, beside the page's figure.
  {
    const bin = createClient(TapwireService, createConnectTransport({ baseUrl: `http://127.0.0.1:${API_PORT}`, httpVersion: "1.1", useBinaryFormat: true }));
    const t = performance.now();
    let n = 0;
    let token = "";
    do {
      const r = await bin.listFlows({ pageSize: 1000, pageToken: token });
      n += r.flows.length;
      token = r.nextPageToken;
    } while (token);
    console.log(`ListFlows from a Bun client, all ${n} flows a page of 1,000 at a time: ${(performance.now() - t).toFixed(0)} ms`);
  }

  const page = await browser.newPage();
  await page.setViewport({ width: 1440, height: 900 });
  const t0 = Date.now();
  await page.goto(`http://127.0.0.1:${API_PORT}/`);
  const domReady = Date.now() - t0;
  await page.waitForFunction(() => document.querySelector(".rows .row") !== null, { timeout: 120_000, polling: 10 });
  const firstRows = Date.now() - t0;
  await page.waitForFunction((n) => document.querySelector(".status-bar")?.classList.contains("live") && (document.querySelector(".status-bar .count")?.textContent ?? "").startsWith(`${n} `), { timeout: 300_000, polling: 20 }, FLOWS);
  const allRows = Date.now() - t0;
  const cdp = await page.createCDPSession();
  await cdp.send("HeapProfiler.collectGarbage");
  const heap = (await page.metrics()).JSHeapUsedSize ?? 0;
  const domRows = await page.$$eval(".rows .row", (e) => e.length);
  console.log(`page load with ${FLOWS} flows in the history: DOM ready ${domReady} ms, first rows ${firstRows} ms, all ${FLOWS} rows listed and live ${allRows} ms`);
  console.log(`JS heap after GC: ${(heap / 1048576).toFixed(1)} MiB (${(heap / FLOWS).toFixed(0)} B per flow); rows in the DOM: ${domRows}`);

  // Scrolling: jump through the list a screen at a time; the time until the next frame is
  // painted, per step.
  const frames = await page.evaluate(async () => {
    const el = document.querySelector(".rows") as HTMLElement;
    const times: number[] = [];
    const frame = () => new Promise<number>((r) => requestAnimationFrame(r));
    for (let i = 0; i < 120; i++) {
      const t = performance.now();
      el.scrollTop = (el.scrollHeight * i) / 120;
      await frame();
      await frame();
      times.push(performance.now() - t);
    }
    return times.sort((a, b) => a - b);
  });
  const pct = (a: number[], p: number) => a[Math.min(a.length - 1, Math.floor(a.length * p))]!;
  console.log(`scroll (120 jumps across all rows): two frames after each jump, median ${pct(frames, 0.5).toFixed(1)} ms, p95 ${pct(frames, 0.95).toFixed(1)} ms, max ${frames.at(-1)!.toFixed(1)} ms`);

  // Capture to row: back at the bottom (following), one curl at a time.
  await page.evaluate(() => {
    const el = document.querySelector(".rows") as HTMLElement;
    el.scrollTop = el.scrollHeight;
    el.dispatchEvent(new Event("scroll"));
  });
  await Bun.sleep(300);
  const lat: number[] = [];
  for (let i = 0; i < Number(values.samples); i++) {
    const path = `/item.json?probe=${i}`;
    const curl = Bun.spawn(["curl", "-sS", "-o", "/dev/null", `http://127.0.0.1:${NGINX_PORT}${path}`]);
    await curl.exited;
    const done = Date.now();
    // The URL cell's title is the whole URL (a row's text runs its cells together).
    await page.waitForFunction((u) => document.querySelectorAll(`.rows .row span[title="${u}"]`).length === 2, { timeout: 10_000, polling: "raf" }, `http://127.0.0.1:${NGINX_PORT}${path}`).catch(async (e) => {
      const inHistory = (await api.listFlows({ filter: { pathPrefix: path }, pageSize: 10 })).flows.length;
      throw new Error(`${e}: the agent's history has ${inHistory} such flows; the page shows ${await page.$eval(".status-bar", (x) => x.textContent)}`);
    });
    lat.push(Date.now() - done);
    await Bun.sleep(100);
  }
  lat.sort((a, b) => a - b);
  console.log(`capture → both rows in the page (curl exit → DOM, ${lat.length} flows, ${FLOWS} rows held): median ${pct(lat, 0.5)} ms, p95 ${pct(lat, 0.95)} ms, max ${lat.at(-1)} ms`);
  tapwire.kill("SIGINT");
  await tapwire.exited;
  await reading;
} finally {
  await browser.close();
  if (tapwire.exitCode === null) tapwire.kill("SIGKILL");
  nginx.kill("SIGTERM");
}
