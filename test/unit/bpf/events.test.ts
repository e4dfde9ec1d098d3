import { describe, expect, test } from "bun:test";
import { decodeEvent, formatIp, DecodeError } from "../../../src/bpf/events.ts";
import { connOpenRecord, dataRecord, libOpenRecord } from "../../support/records.ts";

const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);

describe("decodeEvent", () => {
  test("conn-open: addresses, ports, comm", () => {
    const r = connOpenRecord({ connId: 5, pid: 10, fd: 7, comm: "nginx", origin: 1, cgroupId: 0x1_0000_0042, local: ["::1", 443], remote: ["2001:db8::7", 60000] }, 123);
    expect(decodeEvent(r, view(r), 0, r.length)).toEqual({
      kind: "conn-open", pid: 10, tid: 10, tsNs: 123, connId: 5, fd: 7, family: 6,
      localIp: "::1", localPort: 443, remoteIp: "2001:db8::7", remotePort: 60000,
      origin: 1, connClass: 1, comm: "nginx", tlsLib: 0, cgroupId: 0x1_0000_0042,
    });
  });

  test("conn-open of a TLS connection whose socket is not known: no endpoints, library id", () => {
    const r = connOpenRecord({ connId: 6, pid: 11, fd: -1, comm: "node", origin: 0, connClass: 3, tlsLib: 2, unknownSocket: true }, 5);
    expect(decodeEvent(r, view(r), 0, r.length)).toEqual({
      kind: "conn-open", pid: 11, tid: 11, tsNs: 5, connId: 6, fd: -1, family: 0,
      localIp: "", localPort: 0, remoteIp: "", remotePort: 0,
      origin: 0, connClass: 3, comm: "node", tlsLib: 2, cgroupId: 0,
    });
  });

  test("lib-open: fd and path", () => {
    const r = libOpenRecord(12, 5, "/usr/lib/x86_64-linux-gnu/libssl.so.3", 77);
    expect(decodeEvent(r, view(r), 0, r.length)).toEqual({ kind: "lib-open", pid: 12, tid: 12, tsNs: 77, fd: 5, path: "/usr/lib/x86_64-linux-gnu/libssl.so.3" });
  });

  test("data: payload copied, not borrowed", () => {
    const r = dataRecord(1, 2, 1, 4096, new TextEncoder().encode("abc"), 9);
    const e = decodeEvent(r, view(r), 0, r.length);
    r.fill(0);
    expect(e.kind === "data" && new TextDecoder().decode(e.data)).toBe("abc");
    expect(e).toMatchObject({ connId: 1, direction: 1, pos: 4096, skipped: 0 });
  });

  test("bad records are errors, not crashes", () => {
    const r = dataRecord(1, 2, 1, 0, new TextEncoder().encode("abcdef"), 9);
    expect(() => decodeEvent(r, view(r), 0, 10)).toThrow(DecodeError);
    expect(() => decodeEvent(r, view(r), 0, r.length - 2)).toThrow(DecodeError);
    const bogus = new Uint8Array(64);
    bogus[0] = 99;
    expect(() => decodeEvent(bogus, view(bogus), 0, 64)).toThrow(/unknown record kind 99/);
  });
});

describe("formatIp", () => {
  const v6 = (s: number[]) => new Uint8Array(s);
  test.each([
    [[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], "::1"],
    [[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1], "127.0.0.1"],
    [[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1], "2001:db8::1:0:0:1"],
    [[0xfe, 0x80, 0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7], "fe80:1:2:3:4:5:6:7"],
  ])("%p -> %s", (bytes, text) => {
    expect(formatIp(v6(bytes as number[]), 0, 6)).toBe(text as string);
  });
  test("IPv4", () => expect(formatIp(new Uint8Array([10, 1, 2, 3]), 0, 4)).toBe("10.1.2.3"));
});

describe("decodeEvent: TLS secrets", () => {
  const L = require("../../../src/bpf/gen/layout.ts");
  function secretRecord(label: string, random: Uint8Array, secret: Uint8Array, lens?: { label?: number; random?: number; secret?: number }) {
    const E = L.tw_tls_secret_event;
    const b = new Uint8Array(E.size);
    const dv = new DataView(b.buffer);
    dv.setUint32(0, L.TW_EVENT_TLS_SECRET, true);
    dv.setUint32(4, 42, true);
    dv.setUint32(8, 43, true);
    dv.setUint32(E.label_len, lens?.label ?? label.length, true);
    dv.setUint32(E.random_len, lens?.random ?? random.length, true);
    dv.setUint32(E.secret_len, lens?.secret ?? secret.length, true);
    b.set(new TextEncoder().encode(label), E.label);
    b.set(random, E.client_random);
    b.set(secret, E.secret);
    return b;
  }
  const random = Uint8Array.from({ length: 32 }, (_, i) => i);
  const secret = Uint8Array.from({ length: 48 }, (_, i) => 255 - i);

  test("label, client random and secret as the key log writes them", () => {
    const r = secretRecord("CLIENT_TRAFFIC_SECRET_0", random, secret);
    expect(decodeEvent(r, view(r), 0, r.length)).toMatchObject({
      kind: "tls-secret", pid: 42, tid: 43, label: "CLIENT_TRAFFIC_SECRET_0",
      clientRandom: Buffer.from(random).toString("hex"), secret: Buffer.from(secret).toString("hex"),
    });
  });

  test("a field longer than the event holds is left out, never cut", () => {
    const r = secretRecord("CLIENT_RANDOM", random, secret, { secret: 65 });
    expect(decodeEvent(r, view(r), 0, r.length)).toMatchObject({ label: "CLIENT_RANDOM", secret: "" });
  });
});
