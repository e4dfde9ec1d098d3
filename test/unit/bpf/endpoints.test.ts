// tapwire's own listeners as the kernel side keys them (struct tw_endpoint): addresses parsed
// as the kernel holds them, IPv4-mapped IPv6 as IPv4, "::" for both families.
import { describe, expect, test } from "bun:test";
import { endpointKeys, ipBytes } from "../../../src/bpf/endpoints.ts";
import * as L from "../../../src/bpf/gen/layout.ts";

const hex = (b: Uint8Array | undefined) => (b ? Buffer.from(b).toString("hex") : undefined);

describe("IP addresses", () => {
  test.each([
    ["127.0.0.1", "7f000001"],
    ["0.0.0.0", "00000000"],
    ["::1", "00000000000000000000000000000001"],
    ["::", "00000000000000000000000000000000"],
    ["[::1]", "00000000000000000000000000000001"],
    ["fe80::1%eth0", "fe800000000000000000000000000001"],
    ["2001:db8:0:0:1:0:0:1", "20010db8000000000001000000000001"],
    ["2001:db8::1:0:0:1", "20010db8000000000001000000000001"],
    ["::ffff:127.0.0.1", "00000000000000000000ffff7f000001"],
  ])("%s", (ip, bytes) => expect(hex(ipBytes(ip))).toBe(bytes));

  test.each(["256.0.0.1", "1.2.3", "localhost", "1::2::3", "12345::", ":::", "1:2:3:4:5:6:7:8:9", ""])("%p is not one", (ip) => {
    expect(ipBytes(ip)).toBeUndefined();
  });
});

describe("listener keys", () => {
  const decode = (k: Uint8Array) => {
    const v = new DataView(k.buffer);
    return { family: v.getUint16(L.tw_endpoint.family, true), port: v.getUint16(L.tw_endpoint.port, true), addr: hex(k.subarray(L.tw_endpoint.addr, L.tw_endpoint.addr + 16)) };
  };
  const zeros = "00".repeat(16);
  test("IPv4, IPv6, mapped, and any on both families", () => {
    expect(endpointKeys({ ip: "127.0.0.1", port: 7478 }).map(decode)).toEqual([{ family: 2, port: 7478, addr: "7f000001" + "00".repeat(12) }]);
    expect(endpointKeys({ ip: "::1", port: 7478 }).map(decode)).toEqual([{ family: 10, port: 7478, addr: "00".repeat(15) + "01" }]);
    expect(endpointKeys({ ip: "::ffff:127.0.0.1", port: 1 }).map(decode)).toEqual([{ family: 2, port: 1, addr: "7f000001" + "00".repeat(12) }]);
    expect(endpointKeys({ ip: "::", port: 2 }).map(decode)).toEqual([
      { family: 10, port: 2, addr: zeros },
      { family: 2, port: 2, addr: zeros },
    ]);
    expect(L.tw_endpoint.size).toBe(24);
  });
});
