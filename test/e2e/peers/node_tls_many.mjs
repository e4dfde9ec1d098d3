// Many TLS connections at once with node's own OpenSSL, each with one request, for checking
// that every flow is put on its own socket.
//   node node_tls_many.mjs server PORT CERT KEY   HTTPS and HTTP/2 (ALPN) on one port:
//                                                 GET /n?i=K -> 200 "reply K"; prints "listening"
//   node node_tls_many.mjs h1 PORT CERT N         N HTTPS connections at once, one GET each
//   node node_tls_many.mjs h2 PORT CERT N         N HTTP/2 sessions at once, one GET each
// Clients print "K LOCALPORT STATUS BODY" per request, then "done".
import https from "node:https";
import http2 from "node:http2";
import { readFileSync } from "node:fs";

const [mode, port, cert, arg] = process.argv.slice(2);
if (mode === "server") {
  const handler = (req, res) => {
    req.resume();
    const i = new URL(req.url, "https://x").searchParams.get("i");
    const body = `reply ${i}\n`;
    res.writeHead(200, { "content-type": "text/plain", "content-length": Buffer.byteLength(body) });
    res.end(body);
  };
  const server = http2.createSecureServer({ cert: readFileSync(cert), key: readFileSync(arg), allowHTTP1: true }, handler);
  server.listen(Number(port), "127.0.0.1", () => console.log("listening"));
} else {
  const ca = readFileSync(cert);
  const n = Number(arg);
  const one = (i) =>
    mode === "h1"
      ? new Promise((resolve, reject) => {
          const req = https.request({ host: "127.0.0.1", port: Number(port), path: `/n?i=${i}`, ca, agent: false }, (res) => {
            let data = "";
            res.on("data", (c) => (data += c));
            res.on("end", () => resolve(`${i} ${res.socket.localPort} ${res.statusCode} ${data.trim()}`));
          });
          req.on("error", reject);
          req.end();
        })
      : new Promise((resolve, reject) => {
          const session = http2.connect(`https://127.0.0.1:${port}`, { ca });
          session.on("error", reject);
          const req = session.request({ ":path": `/n?i=${i}` });
          let status = 0;
          let data = "";
          req.on("response", (h) => (status = h[":status"]));
          req.on("data", (c) => (data += c));
          req.on("end", () => {
            const line = `${i} ${session.socket.localPort} ${status} ${data.trim()}`;
            session.close();
            resolve(line);
          });
          req.end();
        });
  const lines = await Promise.all(Array.from({ length: n }, (_, i) => one(i)));
  for (const l of lines) console.log(l);
  console.log("done");
}
