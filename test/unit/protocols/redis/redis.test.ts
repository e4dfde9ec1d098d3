// RESP read at every split point, bounded; commands named and their secrets taken out before
// anything leaves the protocol module; replies rendered as redis-cli prints them.
import { describe, expect, test } from "bun:test";
import { createRespReader, type RespValue } from "../../../../src/protocols/redis/resp.ts";
import { commandOf, renderReply, statementOf, REDACTED } from "../../../../src/protocols/redis/commands.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const cmd = (...words: string[]) => `*${words.length}\r\n` + words.map((w) => `$${enc(w).length}\r\n${w}\r\n`).join("");

function readAll(chunks: Uint8Array[], opts: { maxBulk?: number; maxItems?: number; maxValueBytes?: number } = {}) {
  const values: RespValue[] = [];
  const r = createRespReader({ maxBulk: opts.maxBulk ?? 1 << 20, maxValueBytes: opts.maxValueBytes ?? 1 << 30, maxItems: opts.maxItems ?? 1000, onValue: (v) => values.push(v) });
  for (const c of chunks) r.push(c, 0);
  return { values, failed: r.failed, pending: r.pending };
}

const STREAM =
  cmd("SET", "k", "hello world") +
  "+OK\r\n-ERR wrong\r\n:42\r\n$-1\r\n*-1\r\n$0\r\n\r\n" +
  "*3\r\n$1\r\na\r\n*2\r\n:1\r\n:2\r\n_\r\n" + // nested, with a RESP3 null
  "%2\r\n+x\r\n:1\r\n+y\r\n#t\r\n" + // a map
  ",3.25\r\n(12345678901234567890\r\n=15\r\ntxt:Some string\r\n>2\r\n$7\r\nmessage\r\n$2\r\nhi\r\n~1\r\n:7\r\n";

describe("RESP reader", () => {
  const whole = readAll([enc(STREAM)]);

  test("every type of RESP2 and RESP3", () => {
    expect(whole.failed).toBeUndefined();
    expect(whole.pending).toBe(false);
    expect(whole.values.map((v) => v.type)).toEqual(["array", "simple", "error", "integer", "null", "null", "bulk", "array", "map", "double", "bignum", "verbatim", "push", "set"]);
    expect(whole.values[3]).toEqual({ type: "integer", value: 42n });
    expect(whole.values[7]).toEqual({ type: "array", count: 3, items: [{ type: "bulk", data: enc("a"), size: 1, truncated: false }, { type: "array", count: 2, items: [{ type: "integer", value: 1n }, { type: "integer", value: 2n }] }, { type: "null" }] });
    expect((whole.values[8] as any).count).toBe(4);
  });

  test("the same values at every split point, and byte by byte", () => {
    const bytes = enc(STREAM);
    for (let i = 1; i < bytes.length; i++) expect(readAll([bytes.subarray(0, i), bytes.subarray(i)]).values).toEqual(whole.values);
    expect(readAll([...bytes].map((b) => Uint8Array.of(b))).values).toEqual(whole.values);
  });

  test("a bulk string past the bound keeps its first bytes and skips the rest unbuffered; items past the bound are counted", () => {
    const big = "x".repeat(10_000);
    const r = readAll([enc(`$10000\r\n${big}\r\n*5\r\n:1\r\n:2\r\n:3\r\n:4\r\n:5\r\n`)], { maxBulk: 100, maxItems: 2 });
    expect(r.values[0]).toEqual({ type: "bulk", data: enc("x".repeat(100)), size: 10_000, truncated: true });
    expect(r.values[1]).toEqual({ type: "array", count: 5, items: [{ type: "integer", value: 1n }, { type: "integer", value: 2n }] });
  });

  test("a value keeps at most maxValueBytes of its strings together: an MGET of 64 MiB keeps 4 KiB", () => {
    const mib = "x".repeat(1 << 20);
    const r = readAll([enc("*64\r\n" + `$${1 << 20}\r\n${mib}\r\n`.repeat(64) + "+OK\r\n")], { maxValueBytes: 4096 });
    const kept = (r.values[0] as any).items.reduce((n: number, v: any) => n + v.data.length, 0);
    expect([kept, (r.values[0] as any).items.length, (r.values[0] as any).items.every((v: any) => v.size === 1 << 20)]).toEqual([4096, 64, true]);
    expect(r.values[1]).toEqual({ type: "simple", text: "OK" }); // the budget is per value
  });

  test("what is not RESP stops the reader with the reason; a cut value is pending", () => {
    expect(readAll([enc("GET / HTTP/1.1\r\n")]).failed).toBe('no value starts with "G"');
    expect(readAll([enc("$3\r\nabcX")]).failed).toBe("a bulk string is not followed by CRLF");
    expect(readAll([enc(":12x\r\n")]).failed).toBe('not an integer: "12x"');
    expect(readAll([enc("*2\r\n:1\r\n")]).pending).toBe(true);
    expect(readAll([enc("*".repeat(1) + "1\r\n".repeat(1) + "*1\r\n".repeat(40) + ":1\r\n")]).failed).toBe("nested more than 32 deep");
  });
});

describe("commands", () => {
  const commandFrom = (...words: string[]) => commandOf(readAll([enc(cmd(...words))]).values[0]!)!;

  test("the operation, two words for container commands; the statement quoted where needed", () => {
    expect(commandFrom("set", "greeting", "hello world")).toMatchObject({ operation: "SET" });
    expect(statementOf(commandFrom("set", "greeting", "hello world"))).toBe('set greeting "hello world"');
    expect(statementOf(commandFrom("SET", "k", 'a"b\\c\n\x01'))).toBe('SET k "a\\"b\\\\c\\n\\x01"');
    expect(commandFrom("client", "setname", "app").operation).toBe("CLIENT SETNAME");
    expect(commandFrom("CONFIG").operation).toBe("CONFIG");
  });

  test("secrets never leave: AUTH, HELLO AUTH, MIGRATE AUTH/AUTH2, ACL SETUSER passwords, CONFIG SET of a password", () => {
    const cases: [string[], string][] = [
      [["AUTH", "s3cret"], `AUTH ${REDACTED}`],
      [["AUTH", "alice", "s3cret"], `AUTH ${REDACTED} ${REDACTED}`],
      [["HELLO", "3", "AUTH", "alice", "s3cret", "SETNAME", "x"], `HELLO 3 AUTH ${REDACTED} ${REDACTED} SETNAME x`],
      [["MIGRATE", "h", "6379", "", "0", "5000", "AUTH", "s3cret", "KEYS", "a"], `MIGRATE h 6379 "" 0 5000 AUTH ${REDACTED} KEYS a`],
      [["MIGRATE", "h", "6379", "k", "0", "5000", "AUTH2", "alice", "s3cret"], `MIGRATE h 6379 k 0 5000 AUTH2 ${REDACTED} ${REDACTED}`],
      [["ACL", "SETUSER", "alice", "on", ">s3cret", "#abc123", "~*"], `ACL SETUSER alice on >${REDACTED} #${REDACTED} ~*`],
      [["CONFIG", "SET", "requirepass", "s3cret", "maxmemory", "1mb"], `CONFIG SET requirepass ${REDACTED} maxmemory 1mb`],
      [["CONFIG", "SET", "masterauth", "s3cret"], `CONFIG SET masterauth ${REDACTED}`],
      [["ACL", "SETUSER", "bob", "on", "(>s3cret", "~*)"], `ACL SETUSER bob on (>${REDACTED} ~*)`],
      [["SENTINEL", "SET", "mymaster", "auth-pass", "s3cret", "quorum", "2"], `SENTINEL SET mymaster auth-pass ${REDACTED} quorum 2`],
      [["SENTINEL", "CONFIG", "SET", "sentinel-pass", "s3cret"], `SENTINEL CONFIG SET sentinel-pass ${REDACTED}`],
    ];
    for (const [words, statement] of cases) {
      const c = commandFrom(...words);
      expect(statementOf(c)).toBe(statement);
      expect(JSON.stringify(c)).not.toContain("s3cret");
    }
  });

  test("a reply as redis-cli prints it, bounded; errors split into code and message", () => {
    const [, ok, err, int, nil] = readAll([enc(STREAM)]).values;
    expect(renderReply(ok!, 100)).toEqual({ text: "OK", truncated: false, rows: undefined, error: undefined });
    expect(renderReply(err!, 100)).toEqual({ text: "(error) ERR wrong", truncated: false, rows: undefined, error: { code: "ERR", message: "wrong" } });
    expect(renderReply(int!, 100).text).toBe("(integer) 42");
    expect(renderReply(nil!, 100).text).toBe("(nil)");
    const nested = readAll([enc("*2\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n:3\r\n")]).values[0]!;
    expect(renderReply(nested, 100)).toEqual({ text: '1)\n   1) "a"\n   2) "b"\n2) (integer) 3', truncated: false, rows: 2, error: undefined });
    const long = renderReply(readAll([enc(`$50\r\n${"y".repeat(50)}\r\n`)]).values[0]!, 10);
    expect(long).toEqual({ text: '"yyyyyyyyy', truncated: true, rows: undefined, error: undefined });
  });
});
