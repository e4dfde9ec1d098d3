// What the TLS tests set up: a certificate for 127.0.0.1 made by openssl, and nginx serving
// a static file over TLS. Everything lives in a fresh temporary directory.
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { expect } from "bun:test";
import { realpathSync } from "node:fs";
import { PEERS, PYTHON, freePort, fromB64, startServer, startTapwire, type JsonFlow, type Peer, type Tapwire } from "./harness.ts";
import { IMAGE, type Podman } from "../support/podman.ts";

export interface Cert {
  dir: string;
  cert: string;
  key: string;
}

export async function makeCert(): Promise<Cert> {
  const dir = mkdtempSync(`${tmpdir()}/tapwire-tls-`);
  const cert = `${dir}/cert.pem`;
  const key = `${dir}/key.pem`;
  const p = Bun.spawn(
    ["/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
      "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1", "-keyout", key, "-out", cert],
    { stdout: "ignore", stderr: "pipe" },
  );
  if ((await p.exited) !== 0) throw new Error(`openssl req failed: ${await new Response(p.stderr).text()}`);
  return { dir, cert, key };
}

/** nginx with TLS on 127.0.0.1:port, serving `files` (name -> content) from its root. */
export async function startNginxTls(port: number, cert: Cert, files: Record<string, string | Uint8Array>): Promise<Peer> {
  const prefix = mkdtempSync(`${tmpdir()}/tapwire-nginx-`);
  chmodSync(prefix, 0o755); // the workers run as nobody
  mkdirSync(`${prefix}/www`);
  mkdirSync(`${prefix}/logs`);
  for (const [name, content] of Object.entries(files)) writeFileSync(`${prefix}/www/${name}`, content);
  chmodSync(cert.dir, 0o755);
  writeFileSync(
    `${prefix}/nginx.conf`,
    `worker_processes 1;
pid ${prefix}/nginx.pid;
error_log ${prefix}/logs/error.log;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${prefix}/tmp;
  server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${cert.cert};
    ssl_certificate_key ${cert.key};
    ssl_protocols TLSv1.2 TLSv1.3;
    root ${prefix}/www;
  }
}
`,
  );
  return startServer(["/usr/sbin/nginx", "-p", prefix, "-c", `${prefix}/nginx.conf`, "-g", "daemon off;"], "127.0.0.1", port);
}

/** The client's and the server's flow of `path`, once both are there (and nothing more came). */
export async function bothSidesOf(tapwire: Tapwire, path: string): Promise<{ client: JsonFlow; server: JsonFlow }> {
  await tapwire.waitForFlows((f) => f.request?.path === path, 2);
  await Bun.sleep(200);
  const all = tapwire.flows.filter((f) => f.request?.path === path);
  expect(all.map((f) => f.connection.role).sort()).toEqual(["ROLE_CLIENT", "ROLE_SERVER"]);
  return { client: all.find((f) => f.connection.role === "ROLE_CLIENT")!, server: all.find((f) => f.connection.role === "ROLE_SERVER")! };
}

/** What both sides of one TLS connection to 127.0.0.1:port share, nothing missing. */
export function sameTlsConnection(client: JsonFlow, server: JsonFlow, port: number): void {
  for (const f of [client, server]) {
    expect(f.connection.tls).toBe(true);
    expect(f.connection.destination).toEqual({ ip: "127.0.0.1", port });
    expect(f.connection.source).toEqual({ ip: "127.0.0.1", port: client.connection.source.port });
    expect(f.missing).toBeUndefined();
  }
}

export const TEST_TEXT = "hello from tapwire's test server\n";

/**
 * A TLS client run in a one-shot container of the test image, started after tapwire, against
 * Python's OpenSSL server on the host (/text?container=1; the certificate is at /tls in the
 * container). Checks what every such run must show — both sides of one connection, the
 * client in its container with the image's own `library` probed (and named on its flows),
 * the server on the host, the text — and returns the flows and what the client printed.
 */
export async function tlsClientInContainer(
  pm: Podman,
  cert: Cert,
  library: "OpenSSL" | "GnuTLS" | "NSS",
  command: (port: number) => string[],
): Promise<{ client: JsonFlow; server: JsonFlow; out: string }> {
  const port = await freePort();
  const tapwire = await startTapwire(["--port", String(port), "--docker-socket", pm.socket, "-v"]);
  const server = await startServer([PYTHON, `${PEERS}/https_echo.py`, String(port), cert.cert, cert.key], "127.0.0.1", port);
  const name = `tw-${library.toLowerCase()}-${port}`;
  try {
    const out = pm.run(["run", "--rm", "--network", "host", "--name", name, "-v", `${cert.dir}:/tls:ro`, IMAGE, ...command(port)]);
    const { client, server: srv } = await bothSidesOf(tapwire, "/text?container=1");
    sameTlsConnection(client, srv, port);
    expect(client.connection.container.id).toMatch(/^[0-9a-f]{64}$/);
    expect(srv.connection.process).toEqual({ pid: server.proc.pid, comm: "python3", exe: realpathSync(PYTHON) });
    expect(srv.connection.container).toBeUndefined();
    expect(srv.connection.tlsLibrary).toMatch(/^OpenSSL 3\.\d+\.\d+$/);
    for (const f of [client, srv]) {
      expect([f.request.method, f.response.status]).toEqual(["GET", 200]);
      expect(fromB64(f.response.body).toString()).toBe(TEST_TEXT);
    }
    // The container's library is its own file, probed before its client ran.
    const line = tapwire.stderr.find((l) => l.startsWith(`tls: probing ${library}`) && l.includes("(container "));
    expect(line).toBeDefined();
    expect(client.connection.tlsLibrary).toBe(new RegExp(`^tls: probing (${library} \\S+)`).exec(line!)![1]);
    return { client, server: srv, out };
  } finally {
    try {
      pm.run(["rm", "-f", "-t", "0", name]);
    } catch {}
    await tapwire.stop();
    await server.stop();
  }
}
