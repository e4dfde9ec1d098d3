// serve's GET /metrics, scraped by Debian's real Prometheus: the flows of real traffic (curl →
// Python) counted by protocol, method, status class, side and process, with their durations,
// and tapwire's own counters; a PromQL query through Prometheus' HTTP API returns the counts.
// Behind the token, and the Host/Origin guard, like every endpoint of serve.
import { describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { PEERS, PYTHON, freePort, requireRoot, run, startServer, startTapwire, waitFor } from "./harness.ts";

const CURL = "/usr/bin/curl";
const PROMETHEUS = "/usr/bin/prometheus";
const TOKEN = "metrics-token";
requireRoot();

describe("GET /metrics", () => {
  test("curl's flows counted with their labels and durations; Prometheus scrapes them and PromQL gives the counts", async () => {
    const site = await freePort();
    const apiPort = await freePort();
    const promPort = await freePort();
    const t = await startTapwire(["--listen", `127.0.0.1:${apiPort}`, "--token", TOKEN, "--port", String(site)], { command: "serve" });
    const server = await startServer([PYTHON, `${PEERS}/echo_server.py`, String(site)], "127.0.0.1", site);
    const dir = mkdtempSync(`${tmpdir()}/tapwire-prometheus-`);
    writeFileSync(
      `${dir}/prometheus.yml`,
      `global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: tapwire\n    authorization:\n      credentials: ${TOKEN}\n    static_configs:\n      - targets: ["127.0.0.1:${apiPort}"]\n`,
    );
    let prometheus: Awaited<ReturnType<typeof startServer>> | undefined;
    try {
      for (let i = 0; i < 3; i++) expect((await run([CURL, "-sS", "-o", "/dev/null", `http://127.0.0.1:${site}/text?n=${i}`])).exitCode).toBe(0);
      expect((await run([CURL, "-sS", "-o", "/dev/null", `http://127.0.0.1:${site}/nothing-here`])).exitCode).toBe(0);

      const get = (headers: Record<string, string> = {}) => fetch(`http://127.0.0.1:${apiPort}/metrics`, { headers });
      expect((await get()).status).toBe(401);
      expect((await get({ authorization: `Bearer ${TOKEN}`, origin: "http://evil.example" })).status).toBe(403);
      const text = await waitFor("curl's four flows in /metrics", async () => {
        const body = await (await get({ authorization: `Bearer ${TOKEN}` })).text();
        return /tapwire_flows_total\{[^}]*status_class="4xx",role="client",process="curl"[^}]*\} 1/.test(body) ? body : undefined;
      });
      const labels = (status: string, role: string, process: string) => `protocol="http1",method="GET",status_class="${status}",role="${role}",process="${process}",container=""`;
      expect(text).toContain(`tapwire_flows_total{${labels("2xx", "client", "curl")}} 3\n`);
      expect(text).toContain(`tapwire_flows_total{${labels("4xx", "client", "curl")}} 1\n`);
      expect(text).toContain(`tapwire_flows_total{${labels("2xx", "server", "python3")}} 3\n`);
      expect(text).toContain(`tapwire_flow_duration_seconds_bucket{${labels("2xx", "client", "curl")},le="+Inf"} 3\n`);
      expect(text).toContain(`tapwire_flow_duration_seconds_count{${labels("2xx", "client", "curl")}} 3\n`);
      expect(text).toMatch(/^tapwire_events_total \d+$/m);
      expect(text).toMatch(/^tapwire_resident_memory_bytes \d+$/m);
      expect(text).toContain("# TYPE tapwire_flow_duration_seconds histogram\n");

      prometheus = await startServer([PROMETHEUS, `--config.file=${dir}/prometheus.yml`, `--storage.tsdb.path=${dir}/data`, `--web.listen-address=127.0.0.1:${promPort}`], "127.0.0.1", promPort);
      // It listens before its storage is ready, answering 503 until then.
      await waitFor("Prometheus to be ready", async () => ((await fetch(`http://127.0.0.1:${promPort}/-/ready`)).ok ? true : undefined), 30_000);
      const query = async (q: string) => {
        const res = await fetch(`http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent(q)}`);
        if (!res.ok) return undefined;
        const r = (await res.json()) as any;
        return r.data?.result?.[0]?.value?.[1] as string | undefined;
      };
      expect(await waitFor("Prometheus to have scraped the counts", () => query('sum(tapwire_flows_total{process="curl",status_class="2xx"})'), 30_000)).toBe("3");
      expect(await query('sum(tapwire_flow_duration_seconds_count{process="curl"})')).toBe("4");
      expect(await query('sum by (status_class) (tapwire_flows_total{role="server"})')).toBeDefined();
      expect(await query('up{job="tapwire"}')).toBe("1");
    } finally {
      await prometheus?.stop();
      await t.stop();
      await server.stop();
    }
  }, 90_000);
});
