// The container image end to end: the repository's Dockerfile built with podman (from the
// locally imported Debian image: no registry is reachable), then run as its header says, with
// the host's pids, cgroups, kernel and podman's Docker-compatible socket. The containerised
// tapwire captures a host server and client on loopback; what it prints is checked as a user
// would read it. The layer cache under /tmp/tapwire-podman is kept between runs.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import pkg from "../../package.json" with { type: "json" };
import { ensurePodman, IMAGE as DEBIAN, type Podman } from "../support/podman.ts";
import { PYTHON, ROOT, freePort, requireRoot, run, startServer, waitFor, type JsonFlow, type Peer } from "./harness.ts";

const CURL = "/usr/bin/curl";
const TAG = "localhost/tapwire:test";
/** The build stage, tagged while the test runs so that pruning keeps its layers. */
const BUILD_TAG = "localhost/tapwire-build:test";
const CAPTURE = "tw-image-capture";
/** What the image needs at run time, as the Dockerfile's header says. */
const HOST_VIEW = ["--privileged", "--pid=host", "--cgroupns=host", "-v", "/sys/kernel:/sys/kernel"];
/**
 * The certificates the host trusts, given to the build for the npm registry: on a machine whose
 * egress goes through a proxy that inspects TLS, its certificate is among them.
 */
const HOST_CA = "/etc/ssl/certs/ca-certificates.crt";

let pm: Podman;
let built = false;

beforeAll(async () => {
  requireRoot();
  pm = await ensurePodman();
}, 600_000);

afterAll(() => {
  // The container and the tag go; the layers stay, so that the next build is a warm one.
  for (const args of [["rm", "-f", "-t", "0", CAPTURE], ["untag", TAG], ["untag", BUILD_TAG]]) {
    try {
      pm.run(args);
    } catch {}
  }
});

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** podman ARGS, to its end (killed after timeoutMs). */
async function podman(args: string[], timeoutMs = 60_000): Promise<Result> {
  const proc = Bun.spawn(["podman", ...args], { env: pm.env, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
  const [stdout, stderr] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  const code = await proc.exited;
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** podman ARGS; fails with all it said unless it exits 0. */
async function podmanOk(args: string[], timeoutMs?: number): Promise<Result> {
  const r = await podman(args, timeoutMs);
  if (r.code !== 0) throw new Error(`podman ${args.join(" ")} exited with ${r.code}:\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`);
  return r;
}

function requireImage(): void {
  if (!built) throw new Error(`${TAG} was not built (see the first test)`);
}

/** A container's logs: its stdout and stderr, each as lines. */
async function logs(name: string): Promise<{ out: string[]; err: string[] }> {
  const r = await podmanOk(["logs", name]);
  const lines = (s: string) => s.split("\n").filter((l) => l !== "");
  return { out: lines(r.stdout), err: lines(r.stderr) };
}

const show = (l: { out: string[]; err: string[] }) => `stderr:\n${l.err.join("\n").slice(-4000)}\nstdout:\n${l.out.join("\n").slice(-4000)}`;

describe("the container image", () => {
  test("builds from the repository (build stage with clang and bun, runtime stage from the same Debian)", async () => {
    const args = ["build", "--network", "host", "--build-arg", `BASE=${DEBIAN}`, "-t", TAG];
    if (existsSync(HOST_CA)) args.push("--secret", `id=extra-ca,src=${HOST_CA}`);
    const t0 = performance.now();
    // The first build downloads clang, llvm, npm and bun: minutes on a slow link.
    const r = await podman([...args, ROOT], 1_700_000);
    const seconds = Math.round((performance.now() - t0) / 1000);
    if (r.code !== 0) throw new Error(`podman build failed (${r.code}) after ${seconds} s:\n${r.stdout.slice(-6000)}\n${r.stderr.slice(-4000)}`);
    const cached = (r.stdout.match(/^--> Using cache /gm) ?? []).length;
    console.log(`image: podman build took ${seconds} s (${cached} steps from the cache)`);
    // The layers of earlier builds (of other sources) go; this build's stay as the next one's
    // cache: both of its stages are tagged while untagged images are pruned.
    const stage = await podman([...args.map((a) => (a === TAG ? BUILD_TAG : a)), "--target", "build", ROOT], 600_000);
    if (stage.code === 0) {
      const pruned = await podman(["image", "prune", "-f"]);
      if (pruned.code !== 0) console.log(`image: podman image prune failed: ${pruned.stderr}`);
    } else console.log(`image: tagging the build stage failed: ${stage.stderr.slice(-2000)}`);
    built = true;
  }, 1_800_000);

  test("the runtime image is slim: tapwire and libbpf.so.1, no compiler, no bun, no node, no npm", async () => {
    requireImage();
    const probe = [
      "for p in clang llc bpftool bun node nodejs npm buf; do printf '%s=%s\\n' $p \"$(command -v $p || echo -)\"; done",
      "echo tapwire=$(test -x /usr/local/bin/tapwire && echo yes || echo no)",
      "echo libbpf=$(ls /usr/lib/x86_64-linux-gnu/libbpf.so.1 /lib/x86_64-linux-gnu/libbpf.so.1 2>/dev/null | head -1)",
      "echo llvm=$(ls -d /usr/lib/llvm-* 2>/dev/null | head -1)",
      "echo src=$(test -e /src && echo yes || echo no)",
    ].join("; ");
    const r = await podmanOk(["run", "--rm", "--entrypoint", "/bin/sh", TAG, "-c", probe]);
    const found = Object.fromEntries(r.stdout.trim().split("\n").map((l) => l.split("=", 2) as [string, string]));
    expect(found).toEqual({
      clang: "-",
      llc: "-",
      bpftool: "-",
      bun: "-",
      node: "-",
      nodejs: "-",
      npm: "-",
      buf: "-",
      tapwire: "yes",
      libbpf: expect.stringMatching(/\/libbpf\.so\.1$/),
      llvm: "",
      src: "no",
    });
    // On top of the Debian it starts from: the executable, libbpf and nothing much else.
    const size = async (image: string) => Number((await podmanOk(["image", "inspect", "--format", "{{.Size}}", image])).stdout.trim());
    const [image, base] = [await size(TAG), await size(DEBIAN)];
    const exe = Number((await podmanOk(["run", "--rm", "--entrypoint", "/usr/bin/stat", TAG, "-c", "%s", "/usr/local/bin/tapwire"])).stdout.trim());
    const mb = (n: number) => `${(n / 1e6).toFixed(0)} MB`;
    console.log(`image: ${TAG} is ${mb(image)}: ${mb(base)} of ${DEBIAN}, ${mb(exe)} of tapwire, ${mb(image - base - exe)} of libbpf1 and the rest`);
    expect(image - base - exe).toBeLessThan(10e6);
  }, 60_000);

  test("tapwire version and tapwire doctor in the image: it can run here", async () => {
    requireImage();
    const version = await podmanOk(["run", "--rm", TAG, "version"]);
    expect(version.stdout.trim()).toBe(`tapwire ${pkg.version}`);
    const doctor = await podman(["run", "--rm", ...HOST_VIEW, TAG, "doctor"]);
    const said = `${doctor.stdout}\n${doctor.stderr}`;
    if (doctor.code !== 0) throw new Error(`tapwire doctor exited with ${doctor.code}:\n${said}`);
    const lines = doctor.stdout.split("\n");
    expect(lines).toContain("tapwire can run here");
    expect(lines.find((l) => /^ok\s+libbpf\s/.test(l))).toMatch(/libbpf\.so\.1 \(libbpf 1\.\d+\)/);
    expect(lines.find((l) => /^ok\s+probes\s/.test(l))).toMatch(/\d+ programs loaded and attached/);
    expect(lines.filter((l) => l.startsWith("NO "))).toEqual([]);
  }, 120_000);

  test("capture --json in the image sees a host server and curl on loopback, and stops cleanly", async () => {
    requireImage();
    const dir = mkdtempSync(`${tmpdir()}/tapwire-image-www-`);
    const content = "served to curl, seen from a container\n".repeat(20);
    writeFileSync(`${dir}/hello.txt`, content);
    const port = await freePort();
    let server: Peer | undefined;
    await podman(["rm", "-f", "-t", "0", CAPTURE]);
    try {
      server = await startServer([PYTHON, "-m", "http.server", String(port), "--bind", "127.0.0.1", "--directory", dir], "127.0.0.1", port);
      // Not --rm: its logs and exit code are read after it stops (afterAll removes it).
      await podmanOk(["run", "-d", "--name", CAPTURE, ...HOST_VIEW, "--network", "host", "-v", `${pm.socket}:/var/run/docker.sock`, TAG, "capture", "--json"]);
      let last = { out: [] as string[], err: [] as string[] };
      try {
        await waitFor("the containerised tapwire's ready line", async () => {
          last = await logs(CAPTURE);
          if (last.err.some((l) => l.startsWith("ready"))) return true;
          const state = (await podmanOk(["inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", CAPTURE])).stdout.trim();
          if (!state.startsWith("running")) throw new Error(`the tapwire container is ${state}`);
          await Bun.sleep(300);
          return false;
        }, 90_000);
      } catch (e) {
        throw new Error(`${(e as Error).message}\n${show(last)}`);
      }

      // The engine's socket, mounted where tapwire looks by default: it knows the containers by name.
      const ls = await podmanOk(["run", "--rm", ...HOST_VIEW, "-v", `${pm.socket}:/var/run/docker.sock`, TAG, "containers", "--json"]);
      const itself = JSON.parse(ls.stdout).containers.find((x: JsonFlow) => x.container.name === CAPTURE);
      if (!itself) throw new Error(`tapwire containers does not list ${CAPTURE}:\n${ls.stdout}\n${ls.stderr}`);
      expect(itself.container).toEqual({ id: expect.stringMatching(/^[0-9a-f]{64}$/), name: CAPTURE, image: TAG });
      expect(itself.networkMode).toBe("host");

      const bodyFile = `${dir}/got`;
      const c = await run([CURL, "-sS", "-o", bodyFile, `http://127.0.0.1:${port}/hello.txt?from=host`]);
      if (c.exitCode !== 0) throw new Error(`curl failed: ${c.stderr}`);
      expect(await Bun.file(bodyFile).text()).toBe(content);

      const flowsOf = (l: { out: string[] }) => l.out.filter((x) => x.startsWith("{")).map((x) => JSON.parse(x) as JsonFlow);
      const ours = (f: JsonFlow) => f.request?.path === "/hello.txt?from=host";
      let flows: JsonFlow[] = [];
      try {
        flows = await waitFor("the server's and curl's flows", async () => {
          last = await logs(CAPTURE);
          const got = flowsOf(last).filter(ours);
          if (got.some((f) => f.connection.process.pid === server!.proc.pid) && got.some((f) => f.connection.process.pid === c.pid)) return got;
          await Bun.sleep(300);
          return undefined;
        }, 30_000);
      } catch (e) {
        throw new Error(`${(e as Error).message} (server pid ${server.proc.pid}, curl pid ${c.pid})\n${show(last)}`);
      }
      const srv = flows.find((f) => f.connection.process.pid === server!.proc.pid)!;
      const cli = flows.find((f) => f.connection.process.pid === c.pid)!;
      for (const [f, role, comm] of [[srv, "ROLE_SERVER", "python3"], [cli, "ROLE_CLIENT", "curl"]] as const) {
        expect(f.protocol).toBe("PROTOCOL_HTTP1");
        expect(f.connection.role).toBe(role);
        expect(f.connection.process.comm).toBe(comm);
        // Host processes: no container, seen with the host's cgroups.
        expect(f.connection.container).toBeUndefined();
        expect(f.connection.destination).toEqual({ ip: "127.0.0.1", port });
        expect(f.request.method).toBe("GET");
        expect(f.request.path).toBe("/hello.txt?from=host");
        expect(f.response.status).toBe(200);
        expect(Buffer.from(f.response.body ?? "", "base64").toString()).toBe(content);
      }
      expect(flows.length).toBe(2);

      // Stopped as docker/podman stop does it: SIGTERM, and it is gone well before the SIGKILL.
      const t0 = performance.now();
      await podmanOk(["stop", "-t", "5", CAPTURE]);
      const stopMs = performance.now() - t0;
      const exit = (await podmanOk(["inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", CAPTURE])).stdout.trim();
      last = await logs(CAPTURE);
      if (exit !== "exited 0") throw new Error(`the tapwire container is ${exit} after podman stop\n${show(last)}`);
      expect(stopMs).toBeLessThan(4500);
      const summary = last.err.findLast((l) => l.startsWith("tapwire: "));
      if (!summary) throw new Error(`tapwire printed no summary line\n${show(last)}`);
      expect(summary).toMatch(/^tapwire: \d+ flows from \d+ events/);
      expect(Number(/^tapwire: (\d+) flows/.exec(summary)![1])).toBeGreaterThanOrEqual(2);
    } finally {
      await server?.stop();
      await podman(["rm", "-f", "-t", "0", CAPTURE]);
    }
  }, 180_000);
});
