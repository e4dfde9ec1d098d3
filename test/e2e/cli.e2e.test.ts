// The CLI as a user meets it: bad input gives one clear line and exit code 2, doctor tells
// the truth, and a missing prerequisite is named (simulated in a private mount namespace).
import { beforeAll, describe, expect, test } from "bun:test";
import { TAPWIRE, requireRoot, run } from "./harness.ts";

beforeAll(requireRoot);

async function tapwire(args: string[], wrap: string[] = []) {
  const r = await run([...wrap, TAPWIRE, ...args]);
  return { ...r, stdout: new TextDecoder().decode(r.stdout) };
}

function expectOneLineError(r: { exitCode: number; stderr: string }, pattern: RegExp) {
  expect(r.exitCode).toBe(2);
  const lines = r.stderr.trim().split("\n");
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
  expect(r.stderr).not.toMatch(/\bat .*\.ts:\d+/); // no stack trace
}

describe("usage errors", () => {
  test.each([
    [["--bogus"], /^tapwire: Unknown option '--bogus'/],
    [["--pid", "abc"], /^tapwire: --pid: "abc" is not a number$/],
    [["--port", "70000"], /^tapwire: --port: 70000 is out of range/],
    [["--max-body", "lots"], /^tapwire: --max-body: "lots" is not a size/],
    [["--ring-buffer", "3000"], /^tapwire: --ring-buffer: 3000 must be a power of two/],
    [["frobnicate"], /^tapwire: unknown command "frobnicate"/],
    [["--comm", "a-name-longer-than-15"], /^tapwire: --comm: .* must be 1 to 15 characters/],
  ])("tapwire %p", async (args, pattern) => {
    expectOneLineError(await tapwire(args as string[]), pattern as RegExp);
  });

  test("--help and --version", async () => {
    const h = await tapwire(["--help"]);
    expect(h.exitCode).toBe(0);
    expect(h.stdout).toContain("tapwire doctor");
    const v = await tapwire(["--version"]);
    expect(v.exitCode).toBe(0);
    expect(v.stdout.trim()).toMatch(/^tapwire \d+\.\d+\.\d+$/);
  });
});

describe("prerequisites", () => {
  test("not root: one line, exit 2", async () => {
    const r = await tapwire(["capture"], ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]);
    expectOneLineError(r, /^tapwire: not running as root \(run tapwire with sudo/);
  });

  test("no libbpf: one line, exit 2", async () => {
    const hide = "for f in /usr/lib/*/libbpf.so*; do mount --bind /dev/null \"$f\"; done; exec \"$@\"";
    const r = await tapwire(["capture"], ["unshare", "-m", "sh", "-c", hide, "sh"]);
    expectOneLineError(r, /^tapwire: libbpf not found \(tried libbpf\.so\.1, libbpf\.so, libbpf\.so\.0\) \(install it: apt-get install libbpf1/);
  });

  test("no BTF: one line, exit 2", async () => {
    const hide = 'mount --bind /dev/null /sys/kernel/btf/vmlinux && exec "$@"';
    const r = await tapwire(["capture"], ["unshare", "-m", "sh", "-c", hide, "sh"]);
    expectOneLineError(r, /^tapwire: \/sys\/kernel\/btf\/vmlinux is missing: the kernel has no BTF/);
  });

  test("doctor passes here and loads the probes", async () => {
    const r = await tapwire(["doctor"]);
    expect(r.exitCode).toBe(0);
    for (const name of ["kernel", "privileges", "BTF", "libbpf", "ring buffer", "tracepoints", "uprobes", "probes"]) {
      expect(r.stdout).toMatch(new RegExp(`^ok +${name} `, "m"));
    }
    expect(r.stdout).toMatch(/programs loaded and attached/);
    // The OpenSSL files TLS capture would probe: at least the system's libssl, with its version.
    expect(r.stdout).toMatch(/^-- openssl +OpenSSL 3\.\d+\.\d+: \/(usr\/)?lib\/x86_64-linux-gnu\/libssl\.so\.3 \(SSL_read, SSL_write, SSL_read_ex, SSL_write_ex, /m);
    expect(r.stdout.trim().split("\n").at(-1)).toBe("tapwire can run here");
  });

  test("doctor names what is missing and how to fix it", async () => {
    const hide = 'mount --bind /dev/null /sys/kernel/btf/vmlinux && exec "$@"';
    const r = await tapwire(["doctor"], ["unshare", "-m", "sh", "-c", hide, "sh"]);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toMatch(/^NO +BTF +\/sys\/kernel\/btf\/vmlinux is missing/m);
    expect(r.stdout).toMatch(/fix: use a kernel built with CONFIG_DEBUG_INFO_BTF=y/);
    expect(r.stdout).toMatch(/1 problem found/);
  });
});
