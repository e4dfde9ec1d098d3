// Endpoints as the kernel side keys them (struct tw_endpoint): tapwire's own listening
// sockets, whose local clients are not traced. IPv4 and IPv4-mapped IPv6 addresses are
// IPv4; all zeros is any address.
import { SetupError } from "./libbpf.ts";
import * as L from "./gen/layout.ts";

/** An address tapwire listens on ("0.0.0.0" and "::" for any). */
export interface SelfListener {
  ip: string;
  port: number;
}

const AF_INET = 2;
const AF_INET6 = 10;

/** struct tw_endpoint keys for a listener: IPv4 (and IPv4-mapped) as IPv4; "::" listens on
 * both families. */
export function endpointKeys(l: SelfListener): Uint8Array[] {
  const key = (family: number, addr: Uint8Array) => {
    const k = new Uint8Array(L.tw_endpoint.size);
    const v = new DataView(k.buffer);
    v.setUint16(L.tw_endpoint.family, family, true);
    v.setUint16(L.tw_endpoint.port, l.port, true);
    k.set(addr, L.tw_endpoint.addr);
    return k;
  };
  const bytes = ipBytes(l.ip);
  if (!bytes) throw new SetupError(`not an IP address: ${l.ip}`);
  if (bytes.length === 4) return [key(AF_INET, bytes)];
  const mapped = bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
  if (mapped) return [key(AF_INET, bytes.subarray(12))];
  if (bytes.every((b) => b === 0)) return [key(AF_INET6, bytes), key(AF_INET, new Uint8Array(4))];
  return [key(AF_INET6, bytes)];
}

/** 4 bytes for IPv4 text, 16 for IPv6 text; undefined for anything else. */
export function ipBytes(ip: string): Uint8Array | undefined {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  if (v4) {
    const parts = v4.slice(1).map(Number);
    return parts.every((p) => p <= 255) ? new Uint8Array(parts) : undefined;
  }
  const text = ip.replace(/^\[|\]$/g, "").replace(/%.*$/, "");
  const halves = text.split("::");
  if (!text.includes(":") || halves.length > 2) return undefined;
  const groups = (h: string) => (h ? h.split(":") : []);
  let head = groups(halves[0]!);
  let tail = halves.length === 2 ? groups(halves[1]!) : [];
  // An embedded IPv4 tail (::ffff:1.2.3.4) is two groups.
  const last = (halves.length === 2 ? tail : head).at(-1);
  if (last?.includes(".")) {
    const b = ipBytes(last);
    if (!b || b.length !== 4) return undefined;
    const words = [((b[0]! << 8) | b[1]!).toString(16), ((b[2]! << 8) | b[3]!).toString(16)];
    if (halves.length === 2) tail = [...tail.slice(0, -1), ...words];
    else head = [...head.slice(0, -1), ...words];
  }
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const all = [...head, ...Array(halves.length === 2 ? missing : 0).fill("0"), ...tail];
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(all[i]!)) return undefined;
    const n = parseInt(all[i]!, 16);
    out[2 * i] = n >> 8;
    out[2 * i + 1] = n & 0xff;
  }
  return out;
}
