// The CLI as a user meets it: bad input gives one clear line and exit code 2, doctor tells
// the truth, and a missing prerequisite is named (simulated in a private mount namespace).
import { beforeAll, describe, expect, test } from "bun:test";
import { TAPWIRE, requireRoot, run } from "./harness.ts";
import { goBinary, NEWER_GO } from "../support/go-build.ts";

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
    [["inspect"], /^tapwire: inspect takes one file/],
    [["inspect", "/etc/hostname"], /^tapwire: \/etc\/hostname: not an ELF file$/],
    [["inspect", "/nonexistent/file"], /^tapwire: \/nonexistent\/file: no such file$/],
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

describe("inspect", () => {
  test("a stripped Go binary: version, module, and the offsets a reader of the unstripped build finds", async () => {
    const stripped = goBinary("stripped");
    const plain = goBinary("plain");
    const r = await tapwire(["inspect", stripped, "--json"]);
    expect(r.exitCode).toBe(0);
    const report = JSON.parse(r.stdout);
    const goVersion = /go version (go\S+)/.exec(Bun.spawnSync(["go", "version"]).stdout.toString())![1];
    expect(report.elf).toEqual({ machine: "x86-64", type: "executable", size: Bun.file(stripped).size });
    expect(report.notProbed).toBeUndefined();
    // The same code in the unstripped build, located by readelf and objdump.
    const text = /\.text\s+PROGBITS\s+([0-9a-f]+) ([0-9a-f]+)/.exec(Bun.spawnSync(["readelf", "-W", "-S", plain]).stdout.toString())!;
    const toOffset = (vaddr: number) => vaddr - parseInt(text[1]!, 16) + parseInt(text[2]!, 16);
    const symbols = Bun.spawnSync(["readelf", "-W", "-s", plain]).stdout.toString();
    const sym = (name: string, type = "FUNC") => {
      const m = new RegExp(`^\\s*\\d+: ([0-9a-f]+)\\s+(\\d+) ${type} .* ${name.replace(/[().*]/g, "\\$&")}$`, "m").exec(symbols)!;
      return { vaddr: parseInt(m[1]!, 16), size: Number(m[2]) };
    };
    // The socket path: the itab the linker named, and the offsets the compiler used (reflect).
    const compiler = JSON.parse(Bun.spawnSync([plain, "layout"]).stdout.toString());
    expect(report.go).toEqual({
      version: goVersion,
      path: "tapwire.test/gohttps",
      module: "tapwire.test/gohttps",
      moduleVersion: "(devel)",
      layout: { source: "type information", tcpConnItab: sym("go.itab.*net.TCPConn,net.Conn", "OBJECT").vaddr, ...compiler },
    });
    const read = sym("crypto/tls.(*Conn).Read");
    const write = sym("crypto/tls.(*Conn).Write");
    const retsOf = (f: { vaddr: number; size: number }) => {
      const dump = Bun.spawnSync(["objdump", "-d", "--no-show-raw-insn", `--start-address=0x${f.vaddr.toString(16)}`, `--stop-address=0x${(f.vaddr + f.size).toString(16)}`, plain]).stdout.toString();
      return [...dump.matchAll(/^\s*([0-9a-f]+):\s+ret/gm)].map((m) => toOffset(parseInt(m[1]!, 16)));
    };
    const rets = retsOf(read);
    expect(rets.length).toBeGreaterThan(1);
    expect(retsOf(write).length).toBeGreaterThan(0);
    // Each entry probe's place, as objdump reads the code: the first instruction past the
    // stack check's jbe that the kernel emulates (here a jmp or a nop).
    const placeOf = (f: { vaddr: number; size: number }) => {
      const dump = Bun.spawnSync(["objdump", "-d", "--no-show-raw-insn", `--start-address=0x${f.vaddr.toString(16)}`, `--stop-address=0x${(f.vaddr + 128).toString(16)}`, plain]).stdout.toString();
      const lines = [...dump.matchAll(/^\s*([0-9a-f]+):\s+(\S+)/gm)].map((m) => ({ vaddr: parseInt(m[1]!, 16), mnemonic: m[2]! }));
      const check = lines.findIndex((l) => l.mnemonic === "jbe");
      return lines.slice(check + 1).find((l) => /^(jmp|nop|call|push)$/.test(l.mnemonic))!;
    };
    const [writeAt, readAt] = [placeOf(write), placeOf(read)];
    expect(report.probes).toMatchObject([
      { library: "go", functions: ["crypto/tls.(*Conn).Write"], fileOffset: toOffset(writeAt.vaddr), place: { vaddr: writeAt.vaddr, class: writeAt.mnemonic } },
      { library: "go", functions: ["crypto/tls.(*Conn).Read"], fileOffset: toOffset(readAt.vaddr), place: { vaddr: readAt.vaddr, class: readAt.mnemonic }, returns: rets },
    ]);
    // Past the stack check Write passes once: its RETs are not probed.
    expect(report.probes[0].returns).toBeUndefined();
    for (const p of report.probes) expect(p.place.why).toContain("past the stack check");
    const human = await tapwire(["inspect", stripped]);
    expect(human.stdout).toContain(`Go: ${goVersion}, package tapwire.test/gohttps, module tapwire.test/gohttps (devel)`);
    expect(human.stdout).toContain(`probe crypto/tls.(*Conn).Read at file offset 0x${toOffset(readAt.vaddr).toString(16)}; returns at `);
    expect(human.stdout).toContain(`  place 0x${readAt.vaddr.toString(16)}: nop (nop) — first emulated instruction past the stack check`);
    expect(human.stdout).toContain(`Go socket path (offsets from type information): tls.Conn.conn +${compiler.tlsConnConn}, itab (net.Conn, *net.TCPConn) 0x`);
    // The unstripped twin reads the same from its type information (DWARF is not needed).
    const unstripped = JSON.parse((await tapwire(["inspect", plain, "--json"])).stdout);
    expect(unstripped.go.layout).toEqual(report.go.layout);
    // A stripped build of each newer Go: the offsets its own compiler used (reflect).
    for (const release of NEWER_GO) {
      const bin = goBinary("stripped", "gohttps", release);
      const r = JSON.parse((await tapwire(["inspect", bin, "--json"])).stdout);
      const truth = JSON.parse(Bun.spawnSync([bin, "layout"]).stdout.toString());
      expect([release, r.go.version.startsWith(`go${release}`), r.notProbed, r.go.layout.source, { ...r.go.layout, source: undefined, tcpConnItab: undefined }]).toEqual([release, true, undefined, "type information", { ...truth, source: undefined, tcpConnItab: undefined }]);
      expect(r.go.layout.tcpConnItab).toBeGreaterThan(0);
    }
  }, 300_000);

  test("OpenSSL, GnuTLS, NSS and neither", async () => {
    const lib = await tapwire(["inspect", "/usr/lib/x86_64-linux-gnu/libssl.so.3"]);
    expect(lib.exitCode).toBe(0);
    expect(lib.stdout).toMatch(/^OpenSSL: OpenSSL 3\.\d+\.\d+$/m);
    // The read pair shares one probe, on the internal function both call (a push).
    expect(lib.stdout).toMatch(/^probe SSL_read \+ SSL_read_ex at file offset 0x[0-9a-f]+; uretprobe\n  place 0x[0-9a-f]+: push r\w+ \(push\) — the internal function SSL_read and SSL_read_ex both read through/m);
    expect(lib.stdout).toMatch(/^probe SSL_free at file offset 0x[0-9a-f]+\n  place 0x[0-9a-f]+: je 0x[0-9a-f]+ \(jcc\)/m);
    const gnutls = await tapwire(["inspect", "/usr/lib/x86_64-linux-gnu/libgnutls.so.30"]);
    expect(gnutls.stdout).toMatch(/^GnuTLS: GnuTLS 3\.\d+\.\d+$/m);
    // Each record call with its uretprobe, at its entry; deinit with none.
    for (const fn of ["gnutls_record_send2", "gnutls_record_recv", "gnutls_handshake"]) expect(gnutls.stdout).toMatch(new RegExp(`^probe ${fn} at file offset 0x[0-9a-f]+; uretprobe\n  place 0x[0-9a-f]+: `, "m"));
    expect(gnutls.stdout).toMatch(/^probe gnutls_deinit at file offset 0x[0-9a-f]+\n/m);
    const nss = await tapwire(["inspect", "/usr/lib/x86_64-linux-gnu/libssl3.so"]);
    expect(nss.stdout).toMatch(/^NSS: NSS 3\.[\d.]+, with \S+\/libnspr4\.so$/m);
    expect(nss.stdout).toMatch(/^probe SSL_ImportFD at file offset 0x[0-9a-f]+; uretprobe$/m);
    for (const fn of ["PR_Write", "PR_Send", "PR_Writev", "PR_Read", "PR_Recv"]) expect(nss.stdout).toMatch(new RegExp(`^probe ${fn} in \\S+/libnspr4\\.so at file offset 0x[0-9a-f]+; uretprobe$`, "m"));
    const curl = await tapwire(["inspect", "/usr/bin/curl", "--json"]);
    expect(JSON.parse(curl.stdout)).toMatchObject({ probes: [], notProbed: "not OpenSSL (no exported SSL_read/SSL_write), GnuTLS (gnutls_record_send/recv), NSS (SSL_ImportFD) or Go" });
  });
});
