// The web page's files through the API server: without a token, with strict headers, HEAD
// without a body; a request for another Host, or from another Origin, never reaches them.
import { afterAll, describe, expect, test } from "bun:test";
import { request } from "node:http";
import type { ServiceImpl } from "@connectrpc/connect";
import type { TapwireService } from "../../../src/gen/tapwire/v1/service_pb.ts";
import { startApiServer } from "../../../src/api/server.ts";
import { CONTENT_SECURITY_POLICY, webPages } from "../../../src/api/web-page.ts";

const server = await startApiServer({
  host: "127.0.0.1",
  port: 0,
  token: "t0ken",
  service: {} as ServiceImpl<typeof TapwireService>,
  pages: webPages({ html: "<!doctype html><p>page", js: "console.log(1)", css: "p{}" }),
});
afterAll(() => server.close());
const port = server.address.port;

function get(path: string, headers: Record<string, string> = {}, method = "GET"): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, method, headers }, (res) => {
      let body = "";
      res.on("data", (c) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("the web page's files", () => {
  test("served without the token, each with its type and the strict headers", async () => {
    for (const [path, type, body] of [["/", "text/html", "<!doctype html><p>page"], ["/app.js", "text/javascript", "console.log(1)"], ["/app.css", "text/css", "p{}"]] as const) {
      const r = await get(path);
      expect([r.status, String(r.headers["content-type"]).split(";")[0], r.body]).toEqual([200, type, body]);
      expect(r.headers["content-security-policy"]).toBe(CONTENT_SECURITY_POLICY);
      expect(r.headers["x-content-type-options"]).toBe("nosniff");
      expect(r.headers["referrer-policy"]).toBe("no-referrer");
    }
    expect(CONTENT_SECURITY_POLICY).toStartWith("default-src 'none'; script-src 'self';");
  });

  test("HEAD: the headers, no body", async () => {
    const r = await get("/app.js", {}, "HEAD");
    expect([r.status, r.headers["content-length"], r.body]).toEqual([200, "14", ""]);
  });

  test("another Host or Origin is refused before the page", async () => {
    expect((await get("/", { host: `evil.example:${port}` })).status).toBe(403);
    expect((await get("/", { origin: "http://evil.example" })).status).toBe(403);
    expect((await get("/", { origin: `http://127.0.0.1:${port}` })).status).toBe(200);
  });

  test("a path that is not the page's goes to the API (which wants the token)", async () => {
    expect((await get("/app.js.map")).status).not.toBe(200);
  });
});
