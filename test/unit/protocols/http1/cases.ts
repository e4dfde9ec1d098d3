// A table of well-formed HTTP/1 streams and the messages each must give: shared by the
// parser's table tests, split tests and property tests.
import { bytes, utf8 } from "./harness.ts";

export interface Case {
  name: string;
  kind: "request" | "response";
  data: Uint8Array;
  methods?: string[];
  /** Each emitted message, in part (body as a string). */
  expect: Record<string, unknown>[];
  /** The last message ends only with the stream (close-delimited). */
  untilClose?: boolean;
}

const whole = { incomplete: "", bodyTruncated: false, lostBytes: 0, skippedBefore: 0, contentEncoding: "" };

export const CASES: Case[] = [
  {
    name: "GET without a body; names, order and duplicates kept",
    kind: "request",
    data: bytes("GET /a?b=c HTTP/1.1\r\nHost: example.test\r\nX-Dup: 1\r\nx-dup: 2\r\nAccept: */*\r\n\r\n"),
    expect: [
      {
        kind: "request",
        method: "GET",
        target: "/a?b=c",
        version: "HTTP/1.1",
        headers: [
          { name: "Host", value: "example.test" },
          { name: "X-Dup", value: "1" },
          { name: "x-dup", value: "2" },
          { name: "Accept", value: "*/*" },
        ],
        trailers: [],
        body: "",
        bodySize: 0,
        ...whole,
      },
    ],
  },
  {
    name: "POST with Content-Length",
    kind: "request",
    data: bytes("POST /submit HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\nContent-Type: text/plain\r\n\r\nhello world"),
    expect: [{ method: "POST", target: "/submit", body: "hello world", bodySize: 11, ...whole }],
  },
  {
    name: "chunked request with extensions and trailers",
    kind: "request",
    data: bytes(
      "PUT /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
      "5;name=value\r\nhello\r\n",
      "6 ; ext ; other=\"q\"\r\n world\r\n",
      "0\r\nX-Checksum: 42\r\nX-Other:  two \r\n\r\n",
    ),
    expect: [
      {
        method: "PUT",
        body: "hello world",
        bodySize: 11,
        trailers: [
          { name: "X-Checksum", value: "42" },
          { name: "X-Other", value: "two" },
        ],
        ...whole,
      },
    ],
  },
  {
    name: "chunked with upper-case hex, leading zeros and no trailers",
    kind: "response",
    data: bytes("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0A\r\n0123456789\r\n00000\r\n\r\n"),
    expect: [{ status: 200, body: "0123456789", bodySize: 10, trailers: [], ...whole }],
  },
  {
    name: "Transfer-Encoding chunked wins over Content-Length",
    kind: "request",
    data: bytes("POST /te HTTP/1.1\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
    expect: [{ body: "abc", bodySize: 3, ...whole }],
  },
  {
    name: "pipelined requests in one stream",
    kind: "request",
    data: bytes("GET /1 HTTP/1.1\r\n\r\nPOST /2 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /3 HTTP/1.0\r\n\r\nDELETE /4 HTTP/1.1\r\n\r\n"),
    expect: [
      { target: "/1", method: "GET" },
      { target: "/2", method: "POST", body: "abc" },
      { target: "/3", version: "HTTP/1.0" },
      { target: "/4", method: "DELETE", ...whole },
    ],
  },
  {
    name: "request-target forms: absolute, authority, asterisk; other methods",
    kind: "request",
    data: bytes(
      "GET http://example.test/x?y HTTP/1.1\r\n\r\n",
      "CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\n\r\n",
      "OPTIONS * HTTP/1.1\r\n\r\n",
      "PROPFIND /dav HTTP/1.1\r\nDepth: 1\r\n\r\n",
    ),
    expect: [
      { method: "GET", target: "http://example.test/x?y" },
      { method: "CONNECT", target: "example.test:443" },
      { method: "OPTIONS", target: "*" },
      { method: "PROPFIND", target: "/dav", headers: [{ name: "Depth", value: "1" }] },
    ],
  },
  {
    name: "bare LF line endings, empty lines between messages, an obs-fold",
    kind: "request",
    data: bytes("GET / HTTP/1.1\nHost: h\nX-Long: a\n  b\n\t c\n\n\r\n\nGET /2 HTTP/1.1\nContent-Length: 2\n\nok"),
    expect: [
      { headers: [{ name: "Host", value: "h" }, { name: "X-Long", value: "a b c" }], ...whole },
      { target: "/2", body: "ok", ...whole },
    ],
  },
  {
    name: "whitespace around values stripped, inside kept; empty values; lines without a colon ignored",
    kind: "request",
    data: bytes("GET / HTTP/1.1\r\nA:\t spaced  out \t\r\nB:\r\nC: \r\nnot a field\r\nD:x:y\r\n\r\n"),
    expect: [
      {
        headers: [
          { name: "A", value: "spaced  out" },
          { name: "B", value: "" },
          { name: "C", value: "" },
          { name: "D", value: "x:y" },
        ],
      },
    ],
  },
  {
    name: "header text: UTF-8 when valid, else latin1 byte for byte",
    kind: "request",
    data: bytes("GET /caf", utf8("é"), " HTTP/1.1\r\nX-Name: caf", utf8("é ☕"), "\r\n\r\n", "GET /2 HTTP/1.1\r\nX-Raw: ", new Uint8Array([0xe9, 0x41, 0xff]), "\r\n\r\n"),
    expect: [
      { target: "/café", headers: [{ name: "X-Name", value: "café ☕" }] },
      { target: "/2", headers: [{ name: "X-Raw", value: "\u00e9A\u00ff" }] },
    ],
  },
  {
    name: "a response with Content-Length",
    kind: "response",
    methods: ["GET"],
    data: bytes("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"),
    expect: [{ kind: "response", status: 200, reason: "OK", version: "HTTP/1.1", informational: false, body: "hello", bodySize: 5, ...whole }],
  },
  {
    name: "a response to HEAD has no body, whatever Content-Length says",
    kind: "response",
    methods: ["HEAD", "GET"],
    data: bytes("HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
    expect: [
      { status: 200, body: "", bodySize: 0, ...whole },
      { status: 200, body: "ok", bodySize: 2, ...whole },
    ],
  },
  {
    name: "a response to HEAD with Transfer-Encoding chunked has no body either",
    kind: "response",
    methods: ["HEAD", "GET"],
    data: bytes("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"),
    expect: [{ status: 200, body: "" }, { status: 204 }],
  },
  {
    name: "204 and 304 have no body",
    kind: "response",
    data: bytes(
      "HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n",
      "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\nETag: \"x\"\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx",
    ),
    expect: [
      { status: 204, reason: "No Content", body: "", ...whole },
      { status: 304, reason: "Not Modified", body: "", ...whole },
      { status: 200, body: "x", ...whole },
    ],
  },
  {
    name: "100 Continue, then the final response; neither consumes the other's method",
    kind: "response",
    methods: ["POST", "HEAD"],
    data: bytes(
      "HTTP/1.1 100 Continue\r\n\r\n",
      "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
      "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n",
    ),
    expect: [
      { status: 100, reason: "Continue", informational: true, body: "", ...whole },
      { status: 201, informational: false, body: "ok", ...whole },
      { status: 200, informational: false, body: "", bodySize: 0, ...whole },
    ],
  },
  {
    name: "103 Early Hints with headers, then 200",
    kind: "response",
    methods: ["GET"],
    data: bytes("HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\nLink: </app.js>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    expect: [
      {
        status: 103,
        informational: true,
        headers: [
          { name: "Link", value: "</style.css>; rel=preload" },
          { name: "Link", value: "</app.js>; rel=preload" },
        ],
      },
      { status: 200, informational: false },
    ],
  },
  {
    name: "a close-delimited response ends with the stream",
    kind: "response",
    data: bytes("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nall of this, until the end\r\nHTTP/1.1 200 OK\r\n"),
    untilClose: true,
    expect: [{ version: "HTTP/1.0", body: "all of this, until the end\r\nHTTP/1.1 200 OK\r\n", bodySize: 45, ...whole }],
  },
  {
    name: "a response whose Transfer-Encoding is not chunked runs until close",
    kind: "response",
    data: bytes("HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\nContent-Length: 2\r\n\r\nnot two"),
    untilClose: true,
    expect: [{ body: "not two", bodySize: 7, ...whole }],
  },
  {
    name: "status lines: empty reason with or without its SP, reasons with spaces, any 3 digits",
    kind: "response",
    data: bytes(
      "HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n",
      "HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n",
      "HTTP/1.0 503 Service  Unavailable \r\nContent-Length: 0\r\n\r\n",
      "HTTP/1.1 299 Whatever\nContent-Length: 0\n\n",
    ),
    expect: [
      { status: 200, reason: "" },
      { status: 404, reason: "" },
      { status: 503, reason: "Service  Unavailable ", version: "HTTP/1.0" },
      { status: 299, reason: "Whatever" },
    ],
  },
  {
    name: "chunked response with trailers, then a keep-alive response",
    kind: "response",
    data: bytes("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nGrpc-Status: 0\r\nGrpc-Message: ok\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nz"),
    expect: [
      { body: "abc", bodySize: 3, trailers: [{ name: "Grpc-Status", value: "0" }, { name: "Grpc-Message", value: "ok" }], ...whole },
      { body: "z", trailers: [], ...whole },
    ],
  },
  {
    name: "Content-Length given twice with the same value, or as a list of one value",
    kind: "request",
    data: bytes("POST /a HTTP/1.1\r\nContent-Length: 3\r\ncontent-length: 3\r\n\r\nabcPOST /b HTTP/1.1\r\nContent-Length: 2, 2\r\n\r\nxy"),
    expect: [
      { target: "/a", body: "abc", ...whole },
      { target: "/b", body: "xy", ...whole },
    ],
  },
  {
    name: "101 Switching Protocols: emitted, then the stream is handed over",
    kind: "response",
    methods: ["GET", "GET"],
    data: bytes("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x05hello\x88\x00HTTP/1.1 200 OK\r\n\r\n"),
    expect: [{ status: 101, informational: false, body: "", ...whole }],
  },
  {
    name: "a 2xx to CONNECT: emitted, then the stream is a tunnel",
    kind: "response",
    methods: ["CONNECT"],
    data: bytes("HTTP/1.1 200 Connection established\r\nContent-Length: 5\r\n\r\n\x16\x03\x01\x02\x00binary tls bytes"),
    expect: [{ status: 200, reason: "Connection established", body: "", bodySize: 0, ...whole }],
  },
  {
    name: "a refused CONNECT is an ordinary response",
    kind: "response",
    methods: ["CONNECT", "GET"],
    data: bytes("HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 4\r\n\r\ndenyHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    expect: [{ status: 407, body: "deny" }, { status: 200 }],
  },
  {
    name: "responses with no request seen (joined after it) are read as answers to a non-HEAD request",
    kind: "response",
    data: bytes("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody"),
    expect: [{ status: 200, body: "body", ...whole }],
  },
];
