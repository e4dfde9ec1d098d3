// gRPC peers on @grpc/grpc-js (tapwire.test.Echo, echo.proto).
//   node grpc_peer.mjs server PORT [CERT KEY]      serves Echo; prints "listening"
//   node grpc_peer.mjs client PORT [CERT] [gzip]   calls Say("tapwire"), Say("missing"),
//                                                  Count(3), Collect(a,b,c), Chat(x,y); prints
//                                                  one line per result
//   node grpc_peer.mjs unary PORT [CERT]           one call, Say("first"); prints its message
//   node grpc_peer.mjs tick PORT N                 Tick(N): prints "got I MS" as each reply
//                                                  arrives (MS: Date.now()), then "done"
//   node grpc_peer.mjs chat PORT N                 Chat: a request every 100 ms, N of them;
//                                                  prints "got I MS" for each reply, then "done"
import grpc from "@grpc/grpc-js";
import loader from "@grpc/proto-loader";
import { readFileSync } from "node:fs";

const pkg = grpc.loadPackageDefinition(loader.loadSync(new URL("echo.proto", import.meta.url).pathname, { keepCase: true, defaults: true }));
const Echo = pkg.tapwire.test.Echo;
const [mode, port, cert, key] = process.argv.slice(2);

if (mode === "server") {
  const server = new grpc.Server();
  server.addService(Echo.service, {
    Say(call, cb) {
      if (call.request.name === "missing") return cb({ code: grpc.status.NOT_FOUND, details: "no one called missing (ü)" });
      cb(null, { message: `hello ${call.request.name}`, index: 0 });
    },
    Count(call) {
      for (let i = 1; i <= call.request.count; i++) call.write({ message: `${call.request.name} ${i}`, index: i });
      call.end();
    },
    Collect(call, cb) {
      const names = [];
      call.on("data", (r) => names.push(r.name));
      call.on("end", () => cb(null, { message: names.join("+"), index: names.length }));
    },
    Chat(call) {
      let i = 0;
      call.on("data", (r) => call.write({ message: `re: ${r.name}`, index: ++i }));
      call.on("end", () => call.end());
    },
    Tick(call) {
      let i = 0;
      const timer = setInterval(() => {
        if (i === call.request.count) {
          clearInterval(timer);
          call.end();
          return;
        }
        call.write({ message: `tick ${i}`, index: i });
        i++;
      }, 100);
    },
  });
  const creds = cert ? grpc.ServerCredentials.createSsl(null, [{ cert_chain: readFileSync(cert), private_key: readFileSync(key) }]) : grpc.ServerCredentials.createInsecure();
  server.bindAsync(`127.0.0.1:${port}`, creds, (err) => {
    if (err) throw err;
    console.log("listening");
  });
} else if (mode === "tick" || mode === "chat") {
  const n = Number(process.argv[4]);
  const client = new Echo(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const call = mode === "tick" ? client.Tick({ name: "tick", count: n }) : client.Chat();
  call.on("data", (r) => console.log(`got ${r.index} ${Date.now()}`));
  call.on("end", () => (console.log("done"), client.close()));
  call.on("error", (e) => (console.log(`error ${e.code} ${e.details}`), client.close()));
  if (mode === "chat") {
    let i = 0;
    const timer = setInterval(() => {
      if (i === n) {
        clearInterval(timer);
        call.end();
        return;
      }
      call.write({ name: `say ${i++}` });
    }, 100);
  }
} else if (mode === "unary") {
  const creds = cert ? grpc.credentials.createSsl(readFileSync(cert)) : grpc.credentials.createInsecure();
  const client = new Echo(`127.0.0.1:${port}`, creds);
  client.Say({ name: "first", count: 0 }, (err, r) => {
    console.log(err ? `error ${err.code} ${err.details}` : r.message);
    client.close();
  });
} else {
  const gzip = process.argv.includes("gzip");
  const creds = cert && cert !== "gzip" ? grpc.credentials.createSsl(readFileSync(cert)) : grpc.credentials.createInsecure();
  const client = new Echo(`127.0.0.1:${port}`, creds, gzip ? { "grpc.default_compression_algorithm": 2, "grpc.default_compression_level": 2 } : {});
  const unary = (name) => new Promise((resolve) => client.Say({ name, count: 0, meta: { tags: ["x", "y"] } }, (err, r) => resolve(err ? `error ${err.code} ${err.details}` : r.message)));
  console.log(await unary("tapwire"));
  console.log(await unary("missing"));
  await new Promise((resolve) => {
    const got = [];
    client.Count({ name: "n", count: 3 }).on("data", (r) => got.push(r.message)).on("end", () => (console.log(got.join(",")), resolve()));
  });
  await new Promise((resolve) => {
    const call = client.Collect((err, r) => (console.log(err ? `error ${err.code}` : r.message), resolve()));
    for (const name of ["a", "b", "c"]) call.write({ name });
    call.end();
  });
  await new Promise((resolve) => {
    const got = [];
    const call = client.Chat();
    call.on("data", (r) => got.push(r.message)).on("end", () => (console.log(got.join(",")), resolve()));
    call.write({ name: "x" });
    call.write({ name: "y" });
    call.end();
  });
  client.close();
}
