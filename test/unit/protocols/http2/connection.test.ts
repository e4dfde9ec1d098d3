// One HTTP/2 connection as stream events: header blocks across CONTINUATION frames (bounded),
// push promises, data, resets and GOAWAY, and the compression state started anew when lost.
import { describe, expect, test } from "bun:test";
import { createHttp2Connection, type Http2Events } from "../../../../src/protocols/http2/connection.ts";
import { h2frame, plainBlock, PREFACE, H2, END_STREAM, END_HEADERS } from "../../../support/h2.ts";

function record() {
  const events: string[] = [];
  const handler: Http2Events = {
    headers: (dir, id, fields, end, error) => void events.push(`headers ${dir} ${id} ${fields.map((f) => `${f.name}=${f.value}`).join(",")}${end ? " end" : ""}${error ? ` error ${error}` : ""}`),
    promise: (dir, id, promised, fields) => void events.push(`promise ${dir} ${id}->${promised} ${fields.map((f) => `${f.name}=${f.value}`).join(",")}`),
    data: (dir, id, payload, end) => void events.push(`data ${dir} ${id} ${Buffer.from(payload).toString()}${end ? " end" : ""}`),
    reset: (dir, id, code) => void events.push(`reset ${dir} ${id} ${code}`),
    goaway: (dir, last, code) => void events.push(`goaway ${dir} ${last} ${code}`),
    headerError: (dir, id, why) => void events.push(`header-error ${dir} ${id} ${why}`),
  };
  return { events, handler };
}

const enc = (s: string) => new TextEncoder().encode(s);

describe("an HTTP/2 connection's stream events", () => {
  test("request and response across CONTINUATION, data, trailers; a push; a reset; GOAWAY", () => {
    const { events, handler } = record();
    const c = createHttp2Connection({ joined: false, events: handler });
    const block = plainBlock([[":method", "GET"], [":path", "/x"], [":authority", "a"]]);
    c.push(0, enc(PREFACE), 1);
    // END_STREAM rides on HEADERS, END_HEADERS on the last CONTINUATION.
    c.push(0, h2frame(H2.HEADERS, END_STREAM, 1, block.subarray(0, 5)), 2);
    c.push(0, h2frame(H2.CONTINUATION, END_HEADERS, 1, block.subarray(5)), 3);
    c.push(1, h2frame(H2.HEADERS, END_HEADERS, 1, plainBlock([[":status", "200"]])), 4);
    c.push(1, h2frame(H2.PUSH_PROMISE, END_HEADERS, 1, [0, 0, 0, 2, ...plainBlock([[":method", "GET"], [":path", "/pushed"]])]), 5);
    c.push(1, h2frame(H2.DATA, 0, 1, enc("hel")), 6);
    c.push(1, h2frame(H2.HEADERS, END_HEADERS | END_STREAM, 1, plainBlock([["grpc-status", "0"]])), 7);
    c.push(0, h2frame(H2.RST_STREAM, 0, 3, [0, 0, 0, 8]), 8);
    c.push(1, h2frame(H2.GOAWAY, 0, 0, [0, 0, 0, 1, 0, 0, 0, 0]), 9);
    expect(events).toEqual([
      "headers 0 1 :method=GET,:path=/x,:authority=a end",
      "headers 1 1 :status=200",
      "promise 1 1->2 :method=GET,:path=/pushed",
      "data 1 1 hel",
      "headers 1 1 grpc-status=0 end",
      "reset 0 3 8",
      "goaway 1 1 0",
    ]);
    expect([c.framesRead(0), c.framesRead(1)]).toEqual([3, 5]);
  });

  test("a 1 MiB run of CONTINUATION frames ends as a header error, never a growing buffer; the connection reads on", () => {
    const { events, handler } = record();
    const c = createHttp2Connection({ joined: false, events: handler });
    c.push(0, enc(PREFACE), 0);
    c.push(0, h2frame(H2.HEADERS, 0, 1, new Uint8Array(1000)), 1);
    for (let i = 0; i < 1024; i++) c.push(0, h2frame(H2.CONTINUATION, 0, 1, new Uint8Array(1024)), 2);
    expect(events).toEqual(["header-error 0 1 header block longer than 262144 bytes"]);
    // The rest of the run is ignored (its block is gone); the next stream is read as usual.
    c.push(0, h2frame(H2.HEADERS, END_HEADERS | END_STREAM, 3, plainBlock([[":method", "GET"], [":path", "/next"]])), 3);
    expect(events.at(-1)).toBe("headers 0 3 :method=GET,:path=/next end");
  });

  test("a header block interrupted by another frame, or bytes lost inside one: a header error on its stream", () => {
    const { events, handler } = record();
    const c = createHttp2Connection({ joined: false, events: handler, maxHeaderBlock: 100 });
    c.push(0, enc(PREFACE), 0);
    c.push(0, h2frame(H2.HEADERS, 0, 1, plainBlock([[":method", "GET"]])), 1);
    c.push(0, h2frame(H2.DATA, 0, 1, enc("x")), 2);
    c.push(1, h2frame(H2.HEADERS, 0, 1, plainBlock([[":status", "200"]])), 3);
    c.gap(1, 10);
    c.push(0, h2frame(H2.HEADERS, END_HEADERS, 3, new Uint8Array(101)), 4);
    expect(events).toEqual(["header-error 0 1 header block interrupted", "data 0 1 x", "header-error 1 1 10 bytes lost", "header-error 0 3 header block longer than 100 bytes"]);
  });
});
