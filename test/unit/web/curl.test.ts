// "Copy as curl": the command, run by a real shell into a real curl, sends the same request.
import { describe, expect, test } from "bun:test";
import { create } from "@bufbuild/protobuf";
import { FlowSchema, HeaderSchema, Protocol } from "../../../src/gen/tapwire/v1/flow_pb.ts";
import { curlCommand, shellQuote } from "../../../web/src/curl.ts";

function post(body: Uint8Array, headers: [string, string][] = [["Content-Type", "application/json"]]) {
  return create(FlowSchema, {
    protocol: Protocol.HTTP1,
    connection: { destination: { ip: "127.0.0.1", port: 8080 } },
    request: { method: "POST", path: "/echo?a=1&b='2'", authority: "127.0.0.1:8080", headers: [["Host", "127.0.0.1:8080"], ["Content-Length", String(body.length)], ...headers].map(([name, value]) => ({ name, value })), body },
  });
}

/** What the shell hands curl: each argument, by running the command with curl replaced. */
async function argv(cmd: string): Promise<string[]> {
  const script = `curl() { for a in "$@"; do printf '%s\\0' "$a"; done; }\n${cmd}`;
  const p = Bun.spawn(["/bin/bash", "-c", script], { stdout: "pipe" });
  const out = await new Response(p.stdout).text();
  await p.exited;
  return out.split("\0").slice(0, -1);
}

describe("copy as curl", () => {
  test("quotes survive the shell; Host and Content-Length are left to curl", async () => {
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
    const cmd = curlCommand(post(new TextEncoder().encode(`{"q":"it's $HOME"}`), [["Content-Type", "application/json"], ["X-Odd", `a'b"c`]]));
    expect(await argv(cmd)).toEqual(["http://127.0.0.1:8080/echo?a=1&b='2'", "-H", "Content-Type: application/json", "-H", `X-Odd: a'b"c`, "--data-binary", `{"q":"it's $HOME"}`]);
  });

  test("a binary body goes through printf, byte for byte", async () => {
    const body = new Uint8Array([0, 1, 0xff, 0x27, 0x0a, 0x41]);
    const cmd = curlCommand(post(body, [["Content-Type", "application/octet-stream"]]));
    const script = `curl() { while [ "$1" != --data-binary ]; do shift; done; cat "\${2#@}"; }\n${cmd}`;
    const p = Bun.spawn(["/bin/bash", "-c", script], { stdout: "pipe" });
    expect(new Uint8Array(await new Response(p.stdout).arrayBuffer())).toEqual(body);
  });

  test("HTTP/2: prior knowledge in cleartext, negotiated over TLS; other methods named", async () => {
    const f = post(new Uint8Array());
    f.protocol = Protocol.HTTP2;
    f.request!.method = "DELETE";
    f.request!.headers = [create(HeaderSchema, { name: ":authority", value: "x" })];
    expect(await argv(curlCommand(f))).toEqual(["--http2-prior-knowledge", "-X", "DELETE", "http://127.0.0.1:8080/echo?a=1&b='2'"]);
    f.connection!.tls = true;
    expect((await argv(curlCommand(f)))[0]).toBe("--http2");
  });
});
