// node's https (its own OpenSSL, linked into /usr/bin/node).
//   node node_https.mjs server PORT CERT KEY   GET /text, POST /echo
//   node node_https.mjs client PORT CERT       GET /text then POST /echo on one keep-alive
//                                              connection; prints "STATUS BODY" per response
import https from "node:https";
import { readFileSync } from "node:fs";

const [mode, port, cert, key] = process.argv.slice(2);
if (mode === "server") {
  const server = https.createServer({ cert: readFileSync(cert), key: readFileSync(key) }, (req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const body = req.method === "POST" ? Buffer.concat(chunks) : Buffer.from("hello from node\n");
      res.writeHead(200, { "Content-Type": "text/plain", "Content-Length": body.length });
      res.end(body);
    });
  });
  server.keepAliveTimeout = 60000;
  server.listen(Number(port), "127.0.0.1", () => console.log("listening"));
} else {
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: readFileSync(cert) });
  const request = (method, path, body) =>
    new Promise((resolve, reject) => {
      const req = https.request({ host: "127.0.0.1", port: Number(port), method, path, agent, headers: body ? { "Content-Type": "text/plain", "Content-Length": Buffer.byteLength(body) } : {} }, (res) => {
        let data = "";
        res.on("data", (c) => (data += c));
        res.on("end", () => resolve(`${res.statusCode} ${data.trim()}`));
      });
      req.on("error", reject);
      req.end(body);
    });
  console.log(await request("GET", "/text"));
  console.log(await request("POST", "/echo", "node says hi"));
  agent.destroy();
}
