// The web page of `tapwire serve`, in a real browser (Debian's chromium, driven by
// puppeteer-core) against real tapwire and real traffic on loopback: the list, the detail,
// live flows, the filter box, facets, the token form (over TLS), HAR export, reconnecting
// after the agent went away; and the page's own safety: its headers, Host and Origin.
// Screenshots go to build/test-output/web/.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { PEERS, PYTHON, ROOT, freePort, requireRoot, run, startPeer, startServer, startTapwire, waitFor, type Peer, type Tapwire } from "./harness.ts";
import { makeCert } from "./tls-setup.ts";

requireRoot();
const CURL = "/usr/bin/curl";
const NODE = "/usr/bin/node";
const SHOTS = `${ROOT}/build/test-output/web`;
mkdirSync(SHOTS, { recursive: true });

let browser: Browser;
beforeAll(async () => {
  browser = await puppeteer.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox"], acceptInsecureCerts: true });
});
afterAll(async () => {
  await browser?.close();
});

async function openPage(url: string): Promise<Page> {
  const page = await browser.newPage();
  await page.setViewport({ width: 1440, height: 820 });
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  // A violation of the Content-Security-Policy is a console error: the page must cause none.
  page.on("console", (m) => m.type() === "error" && /Content Security Policy/i.test(m.text()) && errors.push(m.text()));
  (page as Page & { errors: string[] }).errors = errors;
  await page.goto(url);
  return page;
}
const pageErrors = (p: Page) => (p as Page & { errors: string[] }).errors;

/** The text of each row in the DOM (the list is virtualised: those in view). */
const rowTexts = (p: Page) => p.$$eval(".rows .row", (els) => els.map((e) => e.textContent ?? ""));

async function clickRow(p: Page, pred: string) {
  await p.waitForFunction((s) => [...document.querySelectorAll(".rows .row")].some((r) => r.textContent?.includes(s)), { timeout: 5000 }, pred);
  const rows = await p.$$(".rows .row");
  for (const r of rows) {
    if ((await r.evaluate((e) => e.textContent ?? "")).includes(pred)) return r.click();
  }
  throw new Error(`no row with ${pred}`);
}

const curl = async (...args: string[]) => expect((await run([CURL, "-sS", "-o", "/dev/null", ...args])).exitCode).toBe(0);

describe("tapwire serve's web page", () => {
  let t: Tapwire;
  let site: number;
  let grpcPort: number;
  let apiPort: number;
  let echo: Peer;
  let grpcServer: Peer;
  let ssePort: number;
  let sseServer: Peer;
  let page: Page;

  beforeAll(async () => {
    site = await freePort();
    grpcPort = await freePort();
    apiPort = await freePort();
    echo = await startServer([PYTHON, `${PEERS}/echo_server.py`, String(site)], "127.0.0.1", site);
    grpcServer = await startServer([NODE, `${PEERS}/grpc_peer.mjs`, "server", String(grpcPort)], "127.0.0.1", grpcPort);
    ssePort = await freePort();
    sseServer = await startServer([PYTHON, `${PEERS}/sse_server.py`, String(ssePort)], "127.0.0.1", ssePort);
    // Only the test's own ports: other programs on this host (and the browser's DevTools
    // connection) stay out of the list.
    t = await startTapwire(["--listen", `127.0.0.1:${apiPort}`, "--port", String(site), "--port", String(grpcPort), "--port", String(ssePort)], { command: "serve" });
    // Flows before the page opens: they come from the history.
    await curl(`http://127.0.0.1:${site}/text?before=1`);
    await curl(`http://127.0.0.1:${site}/text?before=2`);
    await curl("-H", "Content-Type: application/json", "--data", '{"name":"tapwire","tags":["ebpf","http"],"nested":{"ok":true,"n":42}}', `http://127.0.0.1:${site}/echo?json=1`);
    const g = await run([NODE, `${PEERS}/grpc_peer.mjs`, "unary", String(grpcPort)]);
    expect(new TextDecoder().decode(g.stdout).trim()).toBe("hello first");
    await curl(`http://127.0.0.1:${site}/nothing-here`);
    await Bun.sleep(300);
    page = await openPage(`http://127.0.0.1:${apiPort}/`);
  }, 30_000);
  afterAll(async () => {
    await page?.close();
    if (t?.proc.exitCode === null) await t.stop();
    await echo?.stop();
    await grpcServer?.stop();
    await sseServer?.stop();
  }, 30_000);

  test("the list shows the flows of the history: both sides of each, with method, URL, status and protocol", async () => {
    await page.waitForFunction(() => document.querySelector(".status-bar")?.classList.contains("live"), { timeout: 10000 });
    await waitFor("the history's rows", async () => (await rowTexts(page)).filter((r) => r.includes(`:${site}/`) || r.includes(`:${grpcPort}/`)).length >= 10, 5000);
    const rows = await rowTexts(page);
    const of = (s: string) => rows.filter((r) => r.includes(s));
    expect(of(`http://127.0.0.1:${site}/text?before=1`)).toHaveLength(2);
    expect(of(`/text?before=1`).every((r) => r.includes("GET") && r.includes("200") && r.includes("HTTP/1"))).toBe(true);
    expect(of(`/text?before=1`).some((r) => r.includes("curl"))).toBe(true);
    expect(of(`/text?before=1`).some((r) => r.includes("python3"))).toBe(true);
    expect(of(`/echo?json=1`).every((r) => r.includes("POST"))).toBe(true);
    expect(of(`/nothing-here`).every((r) => r.includes("404"))).toBe(true);
    const grpcRows = of(`/tapwire.test.Echo/Say`);
    expect(grpcRows).toHaveLength(2);
    expect(grpcRows.every((r) => r.includes("gRPC") && r.includes("200"))).toBe(true);
    // Oldest first: the history keeps its order.
    expect(rows.findIndex((r) => r.includes("/text?before=1"))).toBeLessThan(rows.findIndex((r) => r.includes("/text?before=2")));
    // The facets count what is listed.
    const facet = await page.$$eval('.facet[data-facet="process"] li', (els) => els.map((e) => e.textContent));
    expect(facet).toContain(`curl${rows.filter((r) => r.includes("curl")).length}`);
    await page.screenshot({ path: `${SHOTS}/list.png` });
    expect(pageErrors(page)).toEqual([]);
  }, 30_000);

  test("clicking a row shows its headers in order and its JSON body pretty-printed and foldable", async () => {
    await clickRow(page, `/echo?json=1`);
    await page.waitForSelector(".detail .json", { timeout: 5000 });
    const text = await page.$eval(".detail", (e) => e.textContent ?? "");
    expect(text).toContain("200 OK");
    const reqHeaders = await page.$$eval(".detail .section:nth-of-type(2) .headers th", (els) => els.map((e) => e.textContent));
    expect(reqHeaders).toEqual(["Host", "User-Agent", "Accept", "Content-Type", "Content-Length"]);
    // Pretty: one line per member, nested values indented; keys as written.
    const keys = await page.$$eval(".detail .json .j-key", (els) => els.map((e) => e.textContent));
    expect(keys.slice(0, 5)).toEqual(['"name"', '"tags"', '"nested"', '"ok"', '"n"']);
    const entries = await page.$$eval(".detail .json", (els) => els[0]!.querySelectorAll(".j-entry").length);
    expect(entries).toBeGreaterThanOrEqual(6);
    // Folding: the nested object closes on a click of its summary.
    const nested = (await page.$$(".detail .json details details"))[1]!;
    expect(await nested.evaluate((d) => (d as HTMLDetailsElement).open)).toBe(true);
    await (await nested.$("summary"))!.click();
    expect(await nested.evaluate((d) => (d as HTMLDetailsElement).open)).toBe(false);
    await (await nested.$("summary"))!.click();
    await page.screenshot({ path: `${SHOTS}/detail.png` });
    expect(pageErrors(page)).toEqual([]);
  }, 30_000);

  test("a gRPC call's detail shows its service, method, status and messages", async () => {
    await clickRow(page, `/tapwire.test.Echo/Say`);
    await page.waitForFunction(() => document.querySelector(".detail")?.textContent?.includes("Response messages"), { timeout: 5000 });
    const text = await page.$eval(".detail", (e) => e.textContent ?? "");
    expect(text).toContain("tapwire.test.Echo/Say");
    expect(text).toContain("OK");
    expect(text).toContain('"first"');
    expect(text).toContain('"hello first"');
    await page.screenshot({ path: `${SHOTS}/detail-grpc.png` });
    await page.keyboard.press("Escape");
  }, 30_000);

  test("an image body shows as an image (a blob: URL the policy allows); a binary one as hex; copy as curl", async () => {
    // A 2×1 PNG, echoed back with its type by the server.
    const png = Buffer.from("iVBORw0KGgoAAAANSUhEUgAAAAIAAAABCAIAAAB7QOjdAAAAEElEQVR4nGP4z8DAwMDAAAAd/AH/Ra4bVQAAAABJRU5ErkJggg==", "base64");
    const post = (path: string, type: string, body: Uint8Array) => run([CURL, "-sS", "-o", "/dev/null", "-H", `Content-Type: ${type}`, "--data-binary", "@-", `http://127.0.0.1:${site}${path}`], { stdin: body });
    expect((await post("/echo?image=1", "image/png", png)).exitCode).toBe(0);
    expect((await post("/echo?bin=1", "application/octet-stream", new Uint8Array([0, 1, 2, 0xfe, 0xff, 0x41]))).exitCode).toBe(0);
    await clickRow(page, "/echo?image=1");
    const img = await page.waitForSelector(".detail img.body-image", { timeout: 5000 });
    await page.waitForFunction((i) => (i as HTMLImageElement).complete && (i as HTMLImageElement).naturalWidth === 2, { timeout: 5000 }, img);
    expect(await img!.evaluate((i) => (i as HTMLImageElement).src)).toStartWith("blob:");
    await clickRow(page, "/echo?bin=1");
    await page.waitForSelector(".detail .body-hex", { timeout: 5000 });
    expect(await page.$eval(".detail .body-hex", (e) => e.textContent)).toContain("00000000  00 01 02 fe ff 41");
    // Copy as curl: the command on the clipboard names the URL and the body's type.
    await browser.defaultBrowserContext().overridePermissions(`http://127.0.0.1:${apiPort}`, ["clipboard-read", "clipboard-write", "clipboard-sanitized-write"]);
    await page.click(".detail .copy-curl");
    await page.waitForFunction(() => document.querySelector(".detail .copy-curl")?.textContent === "copied", { timeout: 3000 });
    const copied = await page.evaluate(() => navigator.clipboard.readText());
    expect(copied).toStartWith(`curl 'http://127.0.0.1:${site}/echo?bin=1' `);
    expect(copied).toContain("-H 'Content-Type: application/octet-stream'");
    expect(copied).toContain("--data-binary @<(printf '\\x00\\x01\\x02\\xfe\\xff\\x41')");
    await page.keyboard.press("Escape");
    expect(pageErrors(page)).toEqual([]);
  }, 30_000);

  test("a flow made after the page loaded appears within 1 s, and the selection keeps its row", async () => {
    await clickRow(page, `/text?before=2`);
    const selected = await page.$eval(".rows .row.selected", (e) => e.textContent);
    const t0 = Date.now();
    await curl(`http://127.0.0.1:${site}/text?after=1`);
    const done = Date.now();
    await page.waitForFunction(() => [...document.querySelectorAll(".rows .row")].filter((r) => r.textContent?.includes("/text?after=1")).length === 2, { timeout: 3000, polling: "raf" });
    const shown = Date.now();
    console.log(`web-ui: flow curl done → both rows in the page: ${shown - done} ms (curl took ${done - t0} ms)`);
    expect(shown - done).toBeLessThan(1000);
    expect(await page.$eval(".rows .row.selected", (e) => e.textContent)).toBe(selected);
    await page.keyboard.press("Escape");
  }, 30_000);

  test("pause holds new flows back; resume shows them", async () => {
    await page.click("button.pause");
    await curl(`http://127.0.0.1:${site}/text?paused=1`);
    await Bun.sleep(700);
    expect((await rowTexts(page)).filter((r) => r.includes("/text?paused=1"))).toHaveLength(0);
    expect(await page.$eval("button.pause", (b) => b.textContent)).toMatch(/^Resume \(\d+\)$/);
    await page.click("button.pause");
    await page.waitForFunction(() => [...document.querySelectorAll(".rows .row")].filter((r) => r.textContent?.includes("/text?paused=1")).length === 2, { timeout: 2000 });
  }, 30_000);

  test("an open gRPC stream shows as open, its messages arriving in the row and the detail, then it ends", async () => {
    const tick = startPeer([NODE, `${PEERS}/grpc_peer.mjs`, "tick", String(grpcPort), "15"]); // a reply every 100 ms
    try {
      await page.waitForFunction(() => [...document.querySelectorAll(".rows .row.open")].some((r) => r.textContent?.includes("/tapwire.test.Echo/Tick")), { timeout: 3000, polling: "raf" });
      await clickRow(page, "/tapwire.test.Echo/Tick");
      const replies = () => page.$eval(".detail", (d) => Number(/Response messages \((\d+)/.exec(d.textContent ?? "")?.[1] ?? -1)).catch(() => -1);
      const early = await waitFor("a few replies in the detail", async () => ((await replies()) >= 2 ? replies() : undefined), 3000);
      expect(await page.$eval(".rows .row.selected", (r) => r.classList.contains("open"))).toBe(true);
      await page.screenshot({ path: `${SHOTS}/open-stream.png` });
      await tick.waitLine((l) => l === "done", 10000);
      // The end: the row closes with its status, the detail holds all 15.
      await waitFor("the stream's end in the page", async () => ((await replies()) === 15 && !(await page.$eval(".rows .row.selected", (r) => r.classList.contains("open"))) ? true : undefined), 3000);
      expect(early).toBeLessThan(15);
      expect(await page.$eval(".rows .row.selected", (r) => r.textContent)).toContain("200");
    } finally {
      await tick.stop();
      await page.keyboard.press("Escape");
    }
  }, 30_000);

  test("an event stream's events show in its detail as they come, with their fields", async () => {
    const stream = run([CURL, "-sS", "-N", "-o", "/dev/null", `http://127.0.0.1:${ssePort}/events?n=6`]); // an event every 100 ms
    try {
      await page.waitForFunction(() => [...document.querySelectorAll(".rows .row.open")].some((r) => r.textContent?.includes("/events?n=6")), { timeout: 3000, polling: "raf" });
      await clickRow(page, "/events?n=6");
      const events = () => page.$eval(".detail", (d) => Number(/Messages \((\d+)/.exec(d.textContent ?? "")?.[1] ?? 0)).catch(() => 0);
      const early = await waitFor("the first events in the detail", async () => ((await events()) >= 1 ? events() : undefined), 3000);
      expect((await stream).exitCode).toBe(0);
      await waitFor("all six, and the end", async () => ((await events()) === 6 && !(await page.$eval(".rows .row.selected", (r) => r.classList.contains("open"))) ? true : undefined), 3000);
      expect(early).toBeLessThan(6);
      const text = await page.$eval(".detail", (d) => d.textContent ?? "");
      expect(text).toContain("event tick · id 5");
      expect(text).toContain("tick 5\nsecond line");
    } finally {
      await stream;
      await page.keyboard.press("Escape");
    }
  }, 30_000);

  test("a facet click writes its expression into the filter box", async () => {
    const box = (await page.$(".filter-input"))!;
    const pick = async (kind: string, value: string) => {
      // From an empty filter each time: with the filter applied, other facets' values go.
      await box.evaluate((e) => (e as HTMLInputElement).select());
      await box.press("Backspace");
      await box.press("Enter");
      const button = `.facet[data-facet="${kind}"] button[data-value="${value}"]`;
      await page.waitForSelector(button, { timeout: 5000 });
      // Clicked as an element, not at a point: the list may still be re-rendering after the
      // filter was cleared, moving the buttons under a click by coordinates.
      await page.$eval(button, (e) => (e as HTMLElement).click());
      return box.evaluate((e) => (e as HTMLInputElement).value);
    };
    expect(await pick("process", "curl")).toBe('process == "curl"');
    expect(await pick("status", "4xx")).toBe("status >= 400 and status < 500");
    expect(await pick("status", "none")).toBe("not status");
    expect(await pick("host", "127.0.0.1")).toBe('host == "127.0.0.1"');
  }, 30_000);

  // Needs the filter language on the server (src/flows/flow-filter.ts, FlowFilter.expression).
  test("typing a filter narrows the list to the matching rows; a bad one says where it is wrong", async () => {
    const box = await page.$(".filter-input");
    const replace = async (text: string) => {
      await box!.evaluate((e) => (e as HTMLInputElement).select());
      await box!.type(text);
    };
    try {
      await replace(`method == POST and dst.port == ${site} and path contains "json=1"`);
      await page.waitForFunction(() => document.querySelector(".status-bar")?.classList.contains("live"), { timeout: 5000 });
      await waitFor("only the POST rows", async () => {
        const rows = await rowTexts(page);
        return rows.length === 2 && rows.every((r) => r.includes("/echo?json=1")) ? rows : undefined;
      }, 5000).catch(async (e) => {
        throw new Error(`${e.message}: ${JSON.stringify(await rowTexts(page))}`);
      });
      await page.screenshot({ path: `${SHOTS}/filtered.png` });
      // A facet's expression filters too: the 4xx are the two sides of the one 404.
      await page.click('.facet[data-facet="status"] button[data-value="4xx"]');
      await waitFor("only the 404 rows", async () => {
        const rows = await rowTexts(page);
        return rows.length === 2 && rows.every((r) => r.includes("/nothing-here")) ? rows : undefined;
      }, 5000);
      await replace("status >= ");
      const error = await page.waitForSelector(".filter-error", { timeout: 5000 });
      const said = await error!.evaluate((e) => e.textContent);
      console.log(`web-ui: the filter box says: ${said}`);
      expect(said).toMatch(/at column 1[01]: expected a value/); // where the value is missing
    } finally {
      // The tests after this one see every flow again.
      await box!.evaluate((e) => (e as HTMLInputElement).select());
      await box!.press("Backspace");
      await box!.press("Enter");
      await page.waitForFunction(() => !document.querySelector(".filter-error") && document.querySelector(".status-bar")?.classList.contains("live"), { timeout: 5000 });
    }
  }, 30_000);

  // Needs GET /har on the server (the HAR export).
  test("Export HAR downloads a HAR file holding the listed flows", async () => {
    const dir = mkdtempSync(`${tmpdir()}/tapwire-har-`);
    const cdp = await page.createCDPSession();
    await cdp.send("Browser.setDownloadBehavior", { behavior: "allow", downloadPath: dir });
    await page.click("button.export-har");
    const file = await waitFor("the downloaded .har", () => readdirSync(dir).find((f) => f.endsWith(".har")), 10000).catch(async (e) => {
      throw new Error(`${e.message}; the page says: ${await page.$eval(".top", (x) => x.textContent)}`);
    });
    const har = JSON.parse(readFileSync(`${dir}/${file}`, "utf8"));
    const urls = har.log.entries.map((e: { request: { url: string } }) => e.request.url);
    expect(urls).toContain(`http://127.0.0.1:${site}/echo?json=1`);
    expect(urls).toContain(`http://127.0.0.1:${site}/text?after=1`);
  }, 30_000);

  test("when the agent goes away the page says so, and reconnects by itself when it is back", async () => {
    await t.stop();
    await page.waitForFunction(() => document.querySelector(".status-bar.unreachable")?.textContent?.includes("tapwire is unreachable"), { timeout: 10000 });
    await page.screenshot({ path: `${SHOTS}/unreachable.png` });
    t = await startTapwire(["--listen", `127.0.0.1:${apiPort}`, "--port", String(site)], { command: "serve" });
    await page.waitForFunction(() => document.querySelector(".status-bar")?.classList.contains("live"), { timeout: 15000 });
    await curl(`http://127.0.0.1:${site}/text?reconnected=1`);
    await page.waitForFunction(() => [...document.querySelectorAll(".rows .row")].filter((r) => r.textContent?.includes("/text?reconnected=1")).length === 2, { timeout: 3000 });
    expect(pageErrors(page)).toEqual([]);
  }, 60_000);
});

describe("the page behind --token, over TLS", () => {
  let t: Tapwire;
  let echo: Peer;
  let page: Page;
  let apiPort: number;
  let site: number;
  beforeAll(async () => {
    const cert = await makeCert();
    apiPort = await freePort();
    site = await freePort();
    echo = await startServer([PYTHON, `${PEERS}/echo_server.py`, String(site)], "127.0.0.1", site);
    t = await startTapwire(["--listen", `127.0.0.1:${apiPort}`, "--token", "s3cret", "--tls-cert", cert.cert, "--tls-key", cert.key, "--port", String(site)], { command: "serve" });
    page = await openPage(`https://127.0.0.1:${apiPort}/`);
  }, 30_000);
  afterAll(async () => {
    await page?.close();
    await t?.stop();
    await echo?.stop();
  }, 30_000);

  test("asks for the token once, says when it is wrong, keeps it for the tab", async () => {
    try {
      await curl(`http://127.0.0.1:${site}/text?token=1`);
      const input = await page.waitForSelector(".token-form input", { timeout: 5000 });
      await page.screenshot({ path: `${SHOTS}/token.png` });
      await input!.type("wrong");
      await page.click(".token-form button");
      await page.waitForFunction(() => document.querySelector(".token-form .error")?.textContent?.includes("refused"), { timeout: 5000 });
      const again = await page.$(".token-form input");
      await again!.type("s3cret");
      await page.click(".token-form button");
      await page.waitForFunction(() => !document.querySelector(".token-form") && document.querySelector(".status-bar")?.classList.contains("live"), { timeout: 5000 });
      await waitFor("the flow's rows", async () => (await rowTexts(page)).filter((r) => r.includes("/text?token=1")).length === 2, 5000);
      // The tab keeps it: a reload does not ask again.
      await page.reload();
      await page.waitForFunction(() => document.querySelector(".status-bar")?.classList.contains("live"), { timeout: 5000 });
      expect(await page.$(".token-form")).toBeNull();
      // The page's files load without the token (the API does not answer without it).
      const res = await fetch(`https://127.0.0.1:${apiPort}/app.js`, { tls: { rejectUnauthorized: false } });
      expect(res.status).toBe(200);
      expect(pageErrors(page)).toEqual([]);
    } catch (e) {
      await page.screenshot({ path: `${SHOTS}/token-failed.png` });
      throw new Error(`${e}; the page says: ${await page.$eval("body", (b) => b.textContent)}`);
    }
  }, 30_000);

  // Needs GET /har on the server (the HAR export): the page sends it the token too.
  test("Export HAR sends the token and downloads the flows", async () => {
    await page.waitForFunction(() => document.querySelector(".status-bar")?.classList.contains("live"), { timeout: 5000 });
    const dir = mkdtempSync(`${tmpdir()}/tapwire-har-`);
    const cdp = await page.createCDPSession();
    await cdp.send("Browser.setDownloadBehavior", { behavior: "allow", downloadPath: dir });
    await page.click("button.export-har");
    const file = await waitFor("the downloaded .har", () => readdirSync(dir).find((f) => f.endsWith(".har")), 10000).catch(async (e) => {
      throw new Error(`${e.message}; the page says: ${await page.$eval(".top", (x) => x.textContent)}`);
    });
    const har = JSON.parse(readFileSync(`${dir}/${file}`, "utf8"));
    expect(har.log.entries.map((e: { request: { url: string } }) => e.request.url)).toContain(`http://127.0.0.1:${site}/text?token=1`);
  }, 30_000);
});

describe("the page's safety", () => {
  test("strict headers on every file; another Host, or another Origin, is refused", async () => {
    const apiPort = await freePort();
    const t = await startTapwire(["--listen", `127.0.0.1:${apiPort}`, "--port", "1"], { command: "serve" });
    try {
      const base = `http://127.0.0.1:${apiPort}`;
      for (const [path, type] of [["/", "text/html"], ["/app.js", "text/javascript"], ["/app.css", "text/css"]] as const) {
        const r = await fetch(base + path);
        expect(r.status).toBe(200);
        expect(r.headers.get("content-type")).toStartWith(type);
        expect(r.headers.get("content-security-policy")).toBe("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data: blob:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'");
        expect(r.headers.get("x-content-type-options")).toBe("nosniff");
        expect(r.headers.get("referrer-policy")).toBe("no-referrer");
        expect((await r.text()).length).toBeGreaterThan(100);
      }
      // No inline script or style in the page: the policy would block it.
      const html = await (await fetch(base + "/")).text();
      expect(html).not.toMatch(/<script(?![^>]*\bsrc=)|<style|\sstyle=|\son[a-z]+=/i);
      // curl sends exactly the Host asked for (fetch would not let a test set it).
      const status = async (...args: string[]) => new TextDecoder().decode((await run([CURL, "-sS", "-o", "/dev/null", "-w", "%{http_code}", ...args])).stdout);
      expect(await status("-H", `Host: evil.example:${apiPort}`, `${base}/`)).toBe("403");
      expect(await status("-H", `Host: evil.example:${apiPort}`, `${base}/app.js`)).toBe("403");
      expect(await status("-H", `Origin: http://evil.example`, `${base}/`)).toBe("403");
      const rpc = ["-X", "POST", "-H", "Content-Type: application/json", "--data", "{}", `${base}/tapwire.v1.TapwireService/GetInfo`];
      expect(await status("-H", "Origin: http://evil.example", ...rpc)).toBe("403");
      expect(await status("-H", `Origin: http://127.0.0.1:${apiPort}`, ...rpc)).toBe("200");
      expect(await status(`${base}/`)).toBe("200");
    } finally {
      await t.stop();
    }
  }, 30_000);
});
