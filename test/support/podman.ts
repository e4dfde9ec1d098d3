// Real containers for tests: podman (Debian's) with runc, all of its state under one work
// directory, a Debian image made locally with debootstrap (no registry is reachable), and
// podman's Docker-compatible API on a unix socket. Set up once per machine (the image takes
// about a minute) and reused.
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";

export const PODMAN_WORK = "/tmp/tapwire-podman";
// The tag names what the image holds: a new package list is a new tag (and root file system).
export const IMAGE = "localhost/tapwire-debpy:gnutls-nss";
const ROOTFS = `${PODMAN_WORK}/rootfs-gnutls-nss`;

export interface Podman {
  socket: string;
  env: Record<string, string>;
  /** Runs podman; throws with its stderr when it fails. */
  run(args: string[]): string;
  /** Stops the API service (the engine "going away"); containers keep running. */
  stopService(): void;
  /** Starts it again (does nothing when it answers). */
  startService(): Promise<void>;
}

function env(): Record<string, string> {
  return { ...(process.env as Record<string, string>), CONTAINERS_CONF: `${PODMAN_WORK}/containers.conf`, CONTAINERS_STORAGE_CONF: `${PODMAN_WORK}/storage.conf` };
}

function podman(args: string[]): string {
  const r = Bun.spawnSync(["podman", ...args], { env: env(), stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`podman ${args.join(" ")}: ${r.stderr.toString().trim()}`);
  return r.stdout.toString();
}

function mirror(): string {
  for (const f of ["/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list"]) {
    if (!existsSync(f)) continue;
    const m = /(?:URIs:|deb)\s+(https?:\/\/\S*debian\S*?)\/?(?:\s|$)/m.exec(readFileSync(f, "utf8"));
    if (m) return m[1]!;
  }
  return "http://deb.debian.org/debian";
}

export async function ensurePodman(): Promise<Podman> {
  mkdirSync(PODMAN_WORK, { recursive: true });
  writeFileSync(
    `${PODMAN_WORK}/containers.conf`,
    `[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n[engine]\nruntime = "runc"\ntmp_dir = "${PODMAN_WORK}/libpod-tmp"\nevents_logger = "file"\nevents_logfile_path = "${PODMAN_WORK}/events.log"\n[network]\nnetwork_config_dir = "${PODMAN_WORK}/netcfg"\n`,
  );
  writeFileSync(`${PODMAN_WORK}/storage.conf`, `[storage]\ndriver = "overlay"\ngraphroot = "${PODMAN_WORK}/storage"\nrunroot = "${PODMAN_WORK}/runroot"\n`);
  if (!podman(["images", "-q", IMAGE]).trim()) {
    if (!existsSync(`${ROOTFS}/usr/bin/tstclnt`)) {
      const r = Bun.spawnSync(["debootstrap", "--variant=minbase", "--include=python3,libssl3,openssl,curl,ca-certificates,wget,libnss3-tools", "bookworm", ROOTFS, mirror()], { stdout: "pipe", stderr: "pipe" });
      if (r.exitCode !== 0) throw new Error(`debootstrap failed: ${r.stderr.toString().slice(-2000)}`);
    }
    const tar = Bun.spawnSync(["tar", "-C", ROOTFS, "-cf", `${PODMAN_WORK}/rootfs.tar`, "."], { stderr: "pipe" });
    if (tar.exitCode !== 0) throw new Error(`tar failed: ${tar.stderr.toString()}`);
    podman(["import", `${PODMAN_WORK}/rootfs.tar`, IMAGE]);
  }
  const socket = `${PODMAN_WORK}/podman.sock`;
  await startService(socket);
  return { socket, env: env(), run: podman, stopService: () => stopService(socket), startService: () => startService(socket) };
}

const serviceArgs = (socket: string) => ["podman", "system", "service", "--time=0", `unix://${socket}`];

async function startService(socket: string): Promise<void> {
  if (await socketAnswers(socket)) return;
  const service = Bun.spawn(serviceArgs(socket), { env: env(), stdout: "ignore", stderr: "ignore", stdin: "ignore" });
  service.unref();
  for (let i = 0; i < 100 && !(await socketAnswers(socket)); i++) await Bun.sleep(100);
  if (!(await socketAnswers(socket))) throw new Error("podman system service did not start");
}

function stopService(socket: string): void {
  const wanted = serviceArgs(socket).join("\0");
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, "utf8").replace(/\0$/, "").endsWith(wanted.slice("podman".length))) process.kill(Number(entry), "SIGTERM");
    } catch {}
  }
}

async function socketAnswers(socket: string): Promise<boolean> {
  if (!existsSync(socket)) return false;
  try {
    return (await fetch("http://d/_ping", { unix: socket } as RequestInit)).ok;
  } catch {
    return false;
  }
}
