// One request over TLS with node's own OpenSSL, for programs that make their first request
// at once (tests start them only after tapwire is ready, from a fresh copy of node).
//   node node_once.mjs h1-server PORT CERT KEY   HTTPS: GET /first -> 200 "first from node"
//   node node_once.mjs h1-client PORT CERT       one GET /first; prints "STATUS BODY"
//   node node_once.mjs h2-server PORT CERT KEY   the same over HTTP/2 (TLS, ALPN h2)
//   node node_once.mjs h2-client PORT CERT       one GET /first over HTTP/2
// Servers print "listening".
import https from "node:https";
import http2 from "node:http2";
import { readFileSync } from "node:fs";

const [mode, port, cert, key] = process.argv.slice(2);
const BODY = "first from node\n";

if (mode === "h1-server" || mode === "h2-server") {
  const options = { cert: readFileSync(cert), key: readFileSync(key) };
  const handler = (req, res) => {
    req.resume();
    req.on("end", () => {
      res.writeHead(200, { "content-type": "text/plain", "content-length": BODY.length });
      res.end(BODY);
    });
  };
  const server = mode === "h1-server" ? https.createServer(options, handler) : http2.createSecureServer(options, handler);
  server.listen(Number(port), "127.0.0.1", () => console.log("listening"));
} else if (mode === "h1-client") {
  const req = https.request({ host: "127.0.0.1", port: Number(port), path: "/first", ca: readFileSync(cert), agent: false }, (res) => {
    let data = "";
    res.on("data", (c) => (data += c));
    res.on("end", () => console.log(`${res.statusCode} ${data.trim()}`));
  });
  req.end();
} else if (mode === "h2-client") {
  const session = http2.connect(`https://127.0.0.1:${port}`, { ca: readFileSync(cert) });
  const req = session.request({ ":method": "GET", ":path": "/first" });
  let data = "";
  let status = 0;
  req.setEncoding("utf8");
  req.on("response", (h) => (status = h[":status"]));
  req.on("data", (c) => (data += c));
  req.on("end", () => {
    console.log(`${status} ${data.trim()}`);
    session.close();
  });
  req.end();
}
