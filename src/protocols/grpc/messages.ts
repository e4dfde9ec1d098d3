// gRPC's length-prefixed messages (a compressed flag, a 4-byte big-endian length, the
// message) read from one side's HTTP/2 DATA bytes, and what its status trailers say.
// Plain data out: no tapwire imports.
import { gunzipSync, inflateSync } from "node:zlib";

export interface GrpcWireMessage {
  compressed: boolean;
  /** Length on the wire, after the prefix. */
  size: number;
  /** The message (decompressed); shorter than it should be when truncated. */
  data: Uint8Array;
  truncated: boolean;
  /** Why data could not be decompressed ("" when it could). */
  error: string;
}

/**
 * The messages in `raw`, one side's DATA bytes as kept (at most --max-body of them): a
 * message that runs past the end is returned cut, marked truncated; one larger than
 * `maxBytes` once decompressed is kept up to it, marked truncated.
 */
export function readGrpcMessages(raw: Uint8Array, encoding: string, maxBytes: number): GrpcWireMessage[] {
  const out: GrpcWireMessage[] = [];
  let at = 0;
  while (at + 5 <= raw.length) {
    const compressed = raw[at] === 1;
    const size = ((raw[at + 1]! << 24) | (raw[at + 2]! << 16) | (raw[at + 3]! << 8) | raw[at + 4]!) >>> 0;
    const start = at + 5;
    const end = Math.min(raw.length, start + size);
    const body = raw.subarray(start, end);
    out.push(wireMessage(compressed, size, body, end - start < size, encoding, maxBytes));
    at = start + size;
  }
  return out;
}

/**
 * One message from its prefix's flag and length and the bytes kept of it (`cut`: fewer than
 * `size`): decompressed when it can be, kept up to `maxBytes` (a copy), marked truncated when
 * less than the whole message is kept.
 */
export function wireMessage(compressed: boolean, size: number, body: Uint8Array, cut: boolean, encoding: string, maxBytes: number): GrpcWireMessage {
  let data: Uint8Array = body;
  let error = "";
  if (compressed) {
    if (cut) error = "compressed message cut short: not decompressed";
    else {
      try {
        data = decompress(encoding, body, maxBytes);
      } catch (e) {
        error = `${encoding || "no grpc-encoding"}: ${(e as Error).message}`;
      }
    }
  }
  const truncated = cut || data.length > maxBytes;
  return { compressed, size, data: data.length > maxBytes ? data.slice(0, maxBytes) : data.slice(), truncated, error };
}

function decompress(encoding: string, body: Uint8Array, maxBytes: number): Uint8Array {
  const limit = { maxOutputLength: Math.max(maxBytes, 1) + 1 };
  switch (encoding.trim().toLowerCase()) {
    case "gzip":
      return new Uint8Array(gunzipSync(body, limit));
    case "deflate":
      return new Uint8Array(inflateSync(body, limit));
    default:
      throw new Error("unsupported message encoding");
  }
}

const STATUS_NAMES = [
  "OK",
  "CANCELLED",
  "UNKNOWN",
  "INVALID_ARGUMENT",
  "DEADLINE_EXCEEDED",
  "NOT_FOUND",
  "ALREADY_EXISTS",
  "PERMISSION_DENIED",
  "RESOURCE_EXHAUSTED",
  "FAILED_PRECONDITION",
  "ABORTED",
  "OUT_OF_RANGE",
  "UNIMPLEMENTED",
  "INTERNAL",
  "UNAVAILABLE",
  "DATA_LOSS",
  "UNAUTHENTICATED",
];

export function grpcStatusName(code: number): string {
  return STATUS_NAMES[code] ?? `code ${code}`;
}

/** grpc-message is percent-encoded UTF-8; a malformed escape is kept as sent. */
export function decodeGrpcMessage(value: string): string {
  try {
    const bytes: number[] = [];
    for (let i = 0; i < value.length; i++) {
      const c = value.charCodeAt(i);
      if (c === 0x25 && /^[0-9a-fA-F]{2}$/.test(value.slice(i + 1, i + 3))) {
        bytes.push(parseInt(value.slice(i + 1, i + 3), 16));
        i += 2;
      } else bytes.push(c & 0xff);
    }
    return new TextDecoder("utf-8", { fatal: true }).decode(new Uint8Array(bytes));
  } catch {
    return value;
  }
}

/** "/package.Service/Method" -> service and method; a path of another shape gives its parts as found. */
export function splitGrpcPath(path: string): { service: string; method: string } {
  const m = /^\/([^/]+)\/([^/?]+)$/.exec(path);
  return m ? { service: m[1]!, method: m[2]! } : { service: "", method: path };
}
