// Redis commands paired with their replies through the real pipeline, fed kernel records:
// pub/sub in RESP2 and RESP3, UNSUBSCRIBE of everything, commands sent out before their
// replies, RESP3 attributes, a SUBSCRIBE of more channels than are kept, a connection joined
// at a pushed message, CONFIG GET of a password, and the memory one reply may take.
import { describe, expect, test } from "bun:test";
import type { Flow } from "../../../src/gen/tapwire/v1/flow_pb.ts";
import { createPipeline } from "../../../src/flows/pipeline.ts";
import { createProcessRegistry } from "../../../src/procs/process-registry.ts";
import { connectionWriter } from "../../support/records.ts";

const REDIS = 7; // enum tw_class: TW_CLASS_REDIS
const cmd = (...words: string[]) => `*${words.length}\r\n` + words.map((w) => `$${Buffer.byteLength(w)}\r\n${w}\r\n`).join("");
const bulk = (s: string) => `$${Buffer.byteLength(s)}\r\n${s}\r\n`;

/** The flows of one client connection (origin connect unless said) given its bytes in order. */
function flowsOf(steps: [0 | 1, string][], opts: { origin?: number; maxPending?: number; maxBody?: number } = {}): Flow[] {
  const flows: Flow[] = [];
  const p = createPipeline({ onFlow: (f) => flows.push(f), clockOffsetNs: 0, maxBody: opts.maxBody ?? 1 << 20, processes: createProcessRegistry("/nonexistent"), limits: opts.maxPending ? { maxPendingRequests: opts.maxPending } : undefined });
  const w = connectionWriter({ connId: 1, pid: 10, fd: 3, comm: "app", origin: opts.origin ?? 2, local: ["127.0.0.1", 40000], remote: ["127.0.0.1", 6379], connClass: REDIS });
  const feed = (r: Uint8Array) => p.record(r, new DataView(r.buffer, r.byteOffset, r.byteLength), 0, r.length);
  feed(w.open());
  for (const [dir, text] of steps) feed(w.data(dir, text));
  feed(w.close());
  p.endBatch();
  return flows;
}
const summary = (flows: Flow[]) => flows.map((f) => `${f.database!.statement} => ${f.database!.reply}${f.missing ? ` [${f.missing.reason}]` : ""}`);

describe("pairing", () => {
  test("RESP3: SUBSCRIBE's confirmation comes as a push and answers it; a published message is its own flow; PING after pairs with PONG", () => {
    const flows = flowsOf([
      [0, cmd("SUBSCRIBE", "ch")],
      [1, ">3\r\n" + bulk("subscribe") + bulk("ch") + ":1\r\n"],
      [1, ">3\r\n" + bulk("message") + bulk("ch") + bulk("hi")],
      [0, cmd("PING")],
      [1, "+PONG\r\n"],
    ]);
    expect(summary(flows)).toEqual(['SUBSCRIBE ch => 1) "subscribe"\n2) "ch"\n3) (integer) 1', ' => 1) "message"\n2) "ch"\n3) "hi"', "PING => PONG"]);
    expect(flows[1]!.database!.operation).toBe("(pushed)");
  });

  test("RESP2: UNSUBSCRIBE without channels is answered once per channel, until none is left; then an array starting with \"message\" is an ordinary reply", () => {
    const flows = flowsOf([
      [0, cmd("SUBSCRIBE", "a", "b")],
      [1, "*3\r\n" + bulk("subscribe") + bulk("a") + ":1\r\n" + "*3\r\n" + bulk("subscribe") + bulk("b") + ":2\r\n"],
      [0, cmd("UNSUBSCRIBE")],
      [1, "*3\r\n" + bulk("unsubscribe") + bulk("a") + ":1\r\n" + "*3\r\n" + bulk("unsubscribe") + bulk("b") + ":0\r\n"],
      [0, cmd("LRANGE", "l", "0", "-1") + cmd("GET", "k")],
      [1, "*2\r\n" + bulk("message") + bulk("x") + bulk("v")],
    ]);
    expect(summary(flows)).toEqual([
      'SUBSCRIBE a b => 1) "subscribe"\n2) "a"\n3) (integer) 1\n1) "subscribe"\n2) "b"\n3) (integer) 2',
      'UNSUBSCRIBE => 1) "unsubscribe"\n2) "a"\n3) (integer) 1\n1) "unsubscribe"\n2) "b"\n3) (integer) 0',
      'LRANGE l 0 -1 => 1) "message"\n2) "x"',
      'GET k => "v"',
    ]);
  });

  test("a SUBSCRIBE of 1,002 channels (more words than are kept) takes all 1,002 confirmations", () => {
    const channels = Array.from({ length: 1002 }, (_, i) => `c${i}`);
    const confirmations = channels.map((c, i) => "*3\r\n" + bulk("subscribe") + bulk(c) + `:${i + 1}\r\n`).join("");
    const flows = flowsOf([
      [0, cmd("SUBSCRIBE", ...channels)],
      [1, confirmations],
      [0, cmd("PING")],
      [1, "*2\r\n" + bulk("pong") + bulk("")],
    ]);
    expect(flows).toHaveLength(2);
    expect(flows[1]!.database!.statement).toBe("PING");
    expect(flows[1]!.missing).toBeUndefined();
  });

  test("commands sent out before their replies (too many waiting) leave those replies owed: the later pairs stay right", () => {
    const flows = flowsOf(
      [
        [0, cmd("GET", "k0") + cmd("GET", "k1") + cmd("GET", "k2") + cmd("GET", "k3")],
        [1, bulk("v0") + bulk("v1") + bulk("v2") + bulk("v3")],
      ],
      { maxPending: 2 },
    );
    expect(summary(flows)).toEqual([
      "GET k0 =>  [sent out before its reply: too many commands waiting]",
      "GET k1 =>  [sent out before its reply: too many commands waiting]",
      'GET k2 => "v2"',
      'GET k3 => "v3"',
    ]);
  });

  test("a RESP3 attribute describes the next reply; it answers nothing itself", () => {
    const flows = flowsOf([
      [0, cmd("GET", "a") + cmd("GET", "b")],
      [1, "|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.19\r\n" + bulk("va") + bulk("vb")],
    ]);
    expect(summary(flows)).toEqual(['GET a => "va"', 'GET b => "vb"']);
  });

  test("joined at a message pushed to a subscriber: the pushing side is the server", () => {
    const flows = flowsOf(
      [
        [1, "*3\r\n" + bulk("message") + bulk("ch") + bulk("hi")],
        [0, cmd("PING")],
        [1, "*2\r\n" + bulk("pong") + bulk("")],
      ],
      { origin: 0 },
    );
    expect(flows.map((f) => [f.database!.operation, f.connection!.role])).toEqual([
      ["(pushed)", 1],
      ["PING", 1],
    ]);
  });
});

describe("bounds and secrets", () => {
  test("CONFIG GET of a password setting: the value is not in the flow", () => {
    const flows = flowsOf([
      [0, cmd("CONFIG", "GET", "*pass*")],
      [1, "*4\r\n" + bulk("requirepass") + bulk("s3cret") + bulk("masterauth") + bulk("m4ster")],
    ]);
    expect(flows[0]!.database!.reply).toBe('1) "requirepass"\n2) "(redacted)"\n3) "masterauth"\n4) "(redacted)"');
    expect(JSON.stringify(flows, (_k, v) => (typeof v === "bigint" ? String(v) : v))).not.toMatch(/s3cret|m4ster/);
  });

  test("one reply keeps at most --max-body bytes of its strings, whatever it holds", () => {
    const mib = "x".repeat(1 << 20);
    const reply = "*64\r\n" + bulk(mib).repeat(64);
    const flows = flowsOf([[0, cmd("MGET", ...Array.from({ length: 64 }, (_, i) => `k${i}`))], [1, reply]], { maxBody: 4096 });
    const d = flows[0]!.database!;
    expect(d.rows).toBe(64n);
    expect(d.replyTruncated).toBe(true);
    expect(d.reply.length).toBeLessThanOrEqual(4096);
  });
});
