// The filter language: a table of expressions over fixture flows of every shape (each row
// says exactly which flows match), the errors (column and what was expected), the three-valued
// judgement of a flow that has just started, and FlowFilter.expression giving the same answer.
import { describe, expect, test } from "bun:test";
import { create } from "@bufbuild/protobuf";
import { FlowSchema, Protocol, Role, type Flow } from "../../../src/gen/tapwire/v1/flow_pb.ts";
import { FlowFilterSchema } from "../../../src/gen/tapwire/v1/service_pb.ts";
import { compileFilter, compileFlowFilter, FilterSyntaxError } from "../../../src/flows/flow-filter.ts";

const ts = (ms: number) => ({ seconds: BigInt(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1e6 });
const enc = (s: string) => new TextEncoder().encode(s);
const h = (name: string, value: string) => ({ name, value });

const FLOWS: Record<string, Flow> = {
  // curl → a JSON API over TLS, 201 in 40 ms.
  post: create(FlowSchema, {
    id: "1",
    startTime: ts(1_000),
    endTime: ts(1_040),
    protocol: Protocol.HTTP1,
    connection: { id: 1n, role: Role.CLIENT, source: { ip: "127.0.0.1", port: 40000 }, destination: { ip: "127.0.0.1", port: 8443 }, process: { pid: 100, comm: "curl", exe: "/usr/bin/curl" }, tls: true, tlsLibrary: "OpenSSL 3.0.17" },
    request: { method: "POST", path: "/v1/users?active=1", authority: "API.local:8443", version: "HTTP/1.1", headers: [h("Host", "API.local:8443"), h("Content-Type", "application/json"), h("X-Tag", "a"), h("x-tag", "b")], body: enc('{"name":"ada"}'), bodySize: 14n },
    response: { status: 201, reason: "Created", version: "HTTP/1.1", headers: [h("Content-Type", "application/json")], body: enc('{"id":7}'), bodySize: 2_000_000n },
  }),
  // A server in a container answering 503 after 2 s, plaintext, HTTP/2.
  slow: create(FlowSchema, {
    id: "2",
    startTime: ts(5_000),
    endTime: ts(7_000),
    protocol: Protocol.HTTP2,
    connection: { id: 2n, role: Role.SERVER, source: { ip: "10.88.0.1", port: 51000 }, destination: { ip: "10.88.0.5", port: 80 }, process: { pid: 200, comm: "nginx", exe: "/usr/sbin/nginx" }, container: { id: "ab".repeat(32), name: "web", image: "docker.io/library/nginx:1.27" } },
    request: { method: "get", path: "/health", authority: "[::1]:80", version: "HTTP/2", headers: [h(":method", "GET")], bodySize: 0n },
    response: { status: 503, version: "HTTP/2", headers: [h("retry-after", "5")], body: enc("busy"), bodySize: 4n },
  }),
  // A gRPC call that failed NOT_FOUND.
  grpc: create(FlowSchema, {
    id: "3",
    startTime: ts(9_000),
    endTime: ts(9_003),
    protocol: Protocol.GRPC,
    connection: { id: 3n, role: Role.CLIENT, source: { ip: "::1", port: 41000 }, destination: { ip: "::1", port: 50051 }, process: { pid: 300, comm: "python3", exe: "/usr/bin/python3.11" } },
    request: { method: "POST", path: "/shop.Cart/Add", authority: "localhost:50051", version: "HTTP/2", headers: [h("content-type", "application/grpc")], body: new Uint8Array([0, 0, 0, 0, 2, 8, 1]), bodySize: 7n },
    response: { status: 200, version: "HTTP/2", headers: [h("content-type", "application/grpc")], trailers: [h("grpc-status", "5")], bodySize: 0n },
    grpc: { service: "shop.Cart", method: "Add", status: 5, statusName: "NOT_FOUND" },
  }),
  // A request whose response never came (the connection closed).
  lost: create(FlowSchema, {
    id: "4",
    startTime: ts(11_000),
    endTime: ts(11_500),
    protocol: Protocol.HTTP1,
    connection: { id: 4n, role: Role.CLIENT, source: { ip: "127.0.0.1", port: 42000 }, destination: { ip: "127.0.0.1", port: 8080 }, process: { pid: 100, comm: "curl", exe: "/usr/bin/curl" } },
    request: { method: "DELETE", path: "/v1/users/7", authority: "localhost:8080", version: "HTTP/1.1", headers: [h("Host", "localhost:8080")], bodySize: 0n },
    missing: { noResponse: true, reason: "no response" },
  }),
  // A WebSocket still open (a live start, as ListFlows shows it).
  ws: create(FlowSchema, {
    id: "5",
    startTime: ts(13_000),
    open: true,
    protocol: Protocol.WEBSOCKET,
    connection: { id: 5n, role: Role.SERVER, source: { ip: "127.0.0.1", port: 43000 }, destination: { ip: "127.0.0.1", port: 9000 }, process: { pid: 400, comm: "node", exe: "/usr/bin/node" } },
    request: { method: "GET", path: "/chat", authority: "localhost:9000", version: "HTTP/1.1", headers: [h("Upgrade", "websocket")], bodySize: 0n },
    response: { status: 101, version: "HTTP/1.1", headers: [h("Upgrade", "websocket")], bodySize: 0n },
  }),
};
const NAMES = Object.keys(FLOWS);
const matching = (expr: string) => NAMES.filter((n) => compileFilter(expr).matches(FLOWS[n]!));

describe("which flows an expression matches", () => {
  const table: [string, string[]][] = [
    ["status >= 500", ["slow"]],
    ["status == 201", ["post"]],
    ["status != 201", ["slow", "grpc", "lost", "ws"]],
    ["status", ["post", "slow", "grpc", "ws"]],
    ["not status", ["lost"]],
    ["status in [101, 503]", ["slow", "ws"]],
    ["method == GET", ["slow", "ws"]],
    ["method == 'post'", ["post", "grpc"]],
    ["method in [DELETE, get]", ["slow", "lost", "ws"]],
    ['host == "api.local"', ["post"]],
    ['host == "[::1]"', ["slow"]],
    ["authority == localhost:8080", ["lost"]],
    ['path ~ "^/v1/users"', ["post", "lost"]],
    ['path ~ "(?i)^/V1/USERS/\\\\d+$"', ["lost"]],
    ['path !~ "^/v1/"', ["slow", "grpc", "ws"]],
    ['url == "https://API.local:8443/v1/users?active=1"', ["post"]],
    ['url contains "http://localhost"', ["grpc", "lost", "ws"]],
    ["protocol == grpc", ["grpc"]],
    ["protocol == HTTP2 or protocol == websocket", ["slow", "ws"]],
    ["process == curl", ["post", "lost"]],
    ["process in [nginx, node]", ["slow", "ws"]],
    ["pid == 300", ["grpc"]],
    ['exe ~ "python3"', ["grpc"]],
    ["container == web", ["slow"]],
    [`container == ${"ab".repeat(6)}`, ["slow"]],
    ["container", ["slow"]],
    ["not container", ["post", "grpc", "lost", "ws"]],
    ['image contains "nginx"', ["slow"]],
    ["tls", ["post"]],
    ["tls == false", ["slow", "grpc", "lost", "ws"]],
    ['tls_library ~ "^OpenSSL 3"', ["post"]],
    ["role == server", ["slow", "ws"]],
    ["src.ip == 10.88.0.1", ["slow"]],
    ['dst.ip == "::1" and dst.port == 50051', ["grpc"]],
    ["src.port >= 42000", ["slow", "lost", "ws"]],
    ["duration > 1s", ["slow"]],
    ["duration >= 40ms and duration < 500", ["post"]],
    ["duration <= 500ms", ["post", "grpc", "lost"]],
    ["duration < 41000µs", ["post", "grpc"]],
    ['path ~ "^/(v1|v2)/"', ["post", "lost"]],
    ["size > 1mb", ["post"]],
    ["size > 1mib", ["post"]],
    ["resp.size == 4", ["slow"]],
    ["req.size > 10b", ["post"]],
    ['header["content-type"] == "application/json"', ["post"]],
    ['req.header["CONTENT-TYPE"] contains "json"', ["post"]],
    ['resp.header["retry-after"]', ["slow"]],
    ['header["x-tag"] == b', ["post"]],
    ['header["x-tag"] != a', ["slow", "grpc", "lost", "ws"]],
    ['body contains "ada"', ["post"]],
    ['resp.body contains "busy"', ["slow"]],
    ['req.body ~ "\\"name\\":"', ["post"]],
    ["body", ["post", "slow", "grpc"]],
    ["grpc.status == NOT_FOUND", ["grpc"]],
    ["grpc.status == 5", ["grpc"]],
    ["grpc.status != OK", ["post", "slow", "grpc", "lost", "ws"]],
    ['grpc.service == "shop.Cart" and grpc.method == Add', ["grpc"]],
    ["open", ["ws"]],
    ["incomplete", ["lost"]],
    ["id == 3", ["grpc"]],
    ["(process == curl or process == node) and not status >= 300", ["post", "lost", "ws"]],
    ["process == curl || process == node && status == 101", ["post", "lost", "ws"]],
    ["!(method == GET) && !tls", ["grpc", "lost"]],
    ["not not tls", ["post"]],
  ];
  for (const [expr, want] of table) {
    test(expr, () => expect(matching(expr)).toEqual(want));
  }
});

describe("mistakes say where and what was expected", () => {
  const errors: [string, number, string][] = [
    ["status == ", 10, 'expected a value after "==" (a "string", a number or a word), found the end of the filter'],
    ["status = 500", 7, '"=" alone is not an operator: compare with "=="'],
    ["stauts > 5", 0, 'unknown field "stauts" (did you mean status?)'],
    ["(status > 5", 11, 'expected ")" to close the "(" at column 1, found the end of the filter'],
    ["status > 5)", 10, 'expected "and", "or" or the end (this ")" closes nothing), found ")"'],
    ["status > 5 tls", 11, 'expected "and", "or" or the end, found "tls"'],
    ['path ~ "(unclosed"', 7, "not a regular expression: "],
    ['path == "open', 8, "this string has no closing \""],
    ["status contains 5", 7, '"contains" is for text, and status is a number (use == != < <= > >= or in)'],
    ["path > 5", 5, '"> " compares numbers'.replace(" ", "")],
    ["duration > 5kb", 11, 'unknown unit "kb" for duration (ns, us, µs, ms, s, m, h)'],
    ["status > 5s", 9, 'status is a plain number; "s" is not a unit it has'],
    ["status == GET", 10, 'status is a number; found GET'],
    ["protocol == http3", 12, "protocol is one of http1, http2, grpc, websocket, redis; found http3"],
    ["header == x", 0, 'header needs a header name: header["content-type"]'],
    ['status["x"]', 0, "status takes no name in brackets"],
    ["tls > 1", 4, "tls is true or false: use it alone"],
    ["body == x", 5, "body is bytes: use contains, ~ or !~"],
    ["method in GET", 10, 'expected "[" to begin the list after "in", found "GET"'],
    ["method in [GET POST]", 15, 'expected "," or "]" in the list, found "POST"'],
    ["and", 0, 'expected a field name (such as status, host, path), "not" or "(", found "and"'],
    ["  ", 2, "expected a filter, found the end of the filter"],
    ["status > 5 $", 11, 'unexpected character "$"'],
    ['path ~ "^/(a+)+$"', 7, "this regular expression could take exponential time (a repeated group that repeats or alternates inside)"],
    ['body ~ "(a|ab)*c"', 7, "this regular expression could take exponential time (a repeated group that repeats or alternates inside)"],
    ['path ~ "(x)\\\\1"', 7, "this regular expression could take exponential time (a backreference)"],
    ["(".repeat(70) + "tls" + ")".repeat(70), 64, "nested more than 64 deep"],
    [Array(600).fill("tls").join(" or "), 3584, "a filter has at most 1024 words and signs"],
  ];
  for (const [expr, at, reason] of errors) {
    test(JSON.stringify(expr).slice(0, 80), () => {
      let err: unknown;
      try {
        compileFilter(expr);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(FilterSyntaxError);
      const e = err as FilterSyntaxError;
      expect(e.position).toBe(at);
      expect(e.reason.startsWith(reason)).toBe(true);
      expect(e.message).toBe(`at column ${at + 1}: ${e.reason}`);
    });
  }
});

describe("a flow that has just started: what is not known yet neither passes nor fails it", () => {
  const started = create(FlowSchema, { ...FLOWS.post!, response: undefined, endTime: undefined, open: true, missing: undefined });
  const cases: [string, boolean][] = [
    ["status >= 500", true],
    ["method == POST", true],
    ["method == GET", false],
    ["method == GET or status == 200", true],
    ["method == GET and status == 200", false],
    ["not status", true],
    ["not (method == POST)", false],
    ["open", true],
    ["duration > 1s and process == curl", true],
    ["duration > 1s and process == nginx", false],
  ];
  for (const [expr, want] of cases) test(`${expr} → ${want}`, () => expect(compileFilter(expr).startMatches(started)).toBe(want));
});

describe("FlowFilter.expression", () => {
  test("ANDed with the other fields, same answer as the language alone", () => {
    const match = compileFlowFilter(create(FlowFilterSchema, { processNames: ["curl"], expression: "status" }));
    expect(NAMES.filter((n) => match(FLOWS[n]!))).toEqual(["post"]);
    for (const expr of ["status >= 500", 'path ~ "^/v1"', "not tls"]) {
      const viaFilter = compileFlowFilter(create(FlowFilterSchema, { expression: expr }));
      expect(NAMES.filter((n) => viaFilter(FLOWS[n]!))).toEqual(matching(expr));
    }
  });

  test("a bad expression throws the syntax error (the API turns it into INVALID_ARGUMENT)", () => {
    expect(() => compileFlowFilter(create(FlowFilterSchema, { expression: "status =" }))).toThrow(FilterSyntaxError);
  });

  test("blank is no expression", () => {
    const match = compileFlowFilter(create(FlowFilterSchema, { expression: "  " }));
    expect(NAMES.every((n) => match(FLOWS[n]!))).toBe(true);
  });
});
