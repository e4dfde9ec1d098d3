// A stand-in for Trayce's GUI: a @grpc/grpc-js server of TrayceAgent (proto/api), with
// grpc-js's default limits (4 MiB messages, as Trayce's). It answers the command stream with
// set_settings (the containers its user "ticked": the ids given after the port, none by
// default), and prints every call it gets as a JSON line; a batch of flows it refuses is a
// line {"kind":"refused"}. A line "refuse MS" on stdin makes it refuse every batch of flows
// for MS milliseconds (INTERNAL), as a GUI in trouble would.
//   node trayce_gui.mjs PORT [CONTAINER_ID...]
import grpc from "@grpc/grpc-js";
import loader from "@grpc/proto-loader";

const proto = new URL("../../../proto/api/trayce_agent.proto", import.meta.url).pathname;
const api = grpc.loadPackageDefinition(loader.loadSync(proto, { keepCase: false, longs: String, bytes: String, defaults: true, oneofs: true })).api;
const print = (kind, value) => console.log(JSON.stringify({ kind, value }));

let refuseUntil = 0;
process.stdin.setEncoding("utf8");
process.stdin.on("data", (text) => {
  const m = /refuse (\d+)/.exec(text);
  if (m) refuseUntil = Date.now() + Number(m[1]);
});

const server = new grpc.Server();
server.addService(api.TrayceAgent.service, {
  SendFlowsObserved(call, cb) {
    if (Date.now() < refuseUntil) {
      print("refused", call.request.flows.length);
      return cb({ code: grpc.status.INTERNAL, details: "the GUI is refusing flows for a while" });
    }
    for (const flow of call.request.flows) print("flow", flow);
    cb(null, { status: "success" });
  },
  SendContainersObserved(call, cb) {
    print("containers", call.request.containers);
    cb(null, { status: "success" });
  },
  OpenCommandStream(stream) {
    stream.on("data", (started) => {
      print("agent_started", started);
      stream.write({ type: "set_settings", settings: { containerIds: process.argv.slice(3), licenseKey: "" } });
    });
    stream.on("end", () => stream.end());
    stream.on("error", () => {});
  },
});
server.bindAsync(`127.0.0.1:${process.argv[2]}`, grpc.ServerCredentials.createInsecure(), (err) => {
  if (err) throw err;
  console.log("listening");
});
