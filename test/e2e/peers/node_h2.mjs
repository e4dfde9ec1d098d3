// node's http2, cleartext (h2c with prior knowledge).
//   node node_h2.mjs server PORT     GET /hello (text), POST /echo (the body back), with a
//                                    trailer "x-done: yes" on /echo; prints "listening"
//   node node_h2.mjs client PORT     on one session: GET /hello, then POST /echo with
//                                    "ping from node"; then, for each line on stdin, one
//                                    more GET /hello?n=LINE; prints "STATUS BODY" per response
import http2 from "node:http2";
import { createInterface } from "node:readline";

const [mode, port] = process.argv.slice(2);
if (mode === "server") {
  const server = http2.createServer();
  server.on("stream", (stream, headers) => {
    const chunks = [];
    stream.on("data", (c) => chunks.push(c));
    stream.on("end", () => {
      if (headers[":path"] === "/echo") {
        const body = Buffer.concat(chunks);
        stream.respond({ ":status": 200, "content-type": "application/octet-stream", "x-echo-length": String(body.length) }, { waitForTrailers: true });
        stream.on("wantTrailers", () => stream.sendTrailers({ "x-done": "yes" }));
        stream.end(body);
      } else {
        stream.respond({ ":status": 200, "content-type": "text/plain" });
        stream.end("hello from node h2\n");
      }
    });
  });
  server.listen(Number(port), "127.0.0.1", () => console.log("listening"));
} else {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  const request = (headers, body) =>
    new Promise((resolve, reject) => {
      const req = session.request(headers, { endStream: body === undefined });
      let data = "";
      let status = 0;
      req.setEncoding("utf8");
      req.on("response", (h) => (status = h[":status"]));
      req.on("data", (c) => (data += c));
      req.on("end", () => resolve(`${status} ${data.trim()}`));
      req.on("error", reject);
      if (body !== undefined) req.end(body);
    });
  console.log(await request({ ":method": "GET", ":path": "/hello", "x-client": "node" }));
  console.log(await request({ ":method": "POST", ":path": "/echo", "content-type": "text/plain", "x-client": "node" }, "ping from node"));
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) console.log(await request({ ":method": "GET", ":path": `/hello?n=${line}`, "x-client": "node" }));
  session.close();
}
