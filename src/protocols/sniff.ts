// What the first bytes of a stream say it is: the one place tapwire states how HTTP/1, HTTP/2
// and TLS begin. The kernel's classify() in bpf/tapwire.bpf.c states the same facts in C (a
// test holds the two together: test/unit/protocols/sniff.test.ts); the pipeline, the flows
// and the API server ask here.
//
// PROTOCOL_LIST: a new protocol adds its first-bytes test here (and in classify()).

/** The HTTP/1 methods tapwire knows a request by (RFC 9110 and PATCH). */
export const HTTP1_METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"] as const;

/** The HTTP/1 methods as bytes (searched for when resynchronising a damaged stream). */
export const HTTP1_METHOD_BYTES: readonly Uint8Array[] = HTTP1_METHODS.map((m) => Uint8Array.from(m, (c) => c.charCodeAt(0)));

/** "HTTP/1." — how a response's status line begins. */
export const HTTP1_VERSION_BYTES = Uint8Array.from("HTTP/1.", (c) => c.charCodeAt(0));

/** The HTTP/2 client connection preface (RFC 9113 §3.4). */
export const H2_PREFACE = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
export const H2_PREFACE_BYTES = Uint8Array.from(H2_PREFACE, (c) => c.charCodeAt(0));

const startsWithBytes = (b: Uint8Array, prefix: Uint8Array, n = prefix.length) => {
  if (b.length < n) return false;
  for (let i = 0; i < n; i++) if (b[i] !== prefix[i]) return false;
  return true;
};

/** A request line's start: a known method and a space. */
export function isHttp1RequestStart(b: Uint8Array): boolean {
  for (const m of HTTP1_METHOD_BYTES) if (b.length > m.length && b[m.length] === 0x20 && startsWithBytes(b, m)) return true;
  return false;
}

/** A status line's start: "HTTP/1.". */
export function isHttp1ResponseStart(b: Uint8Array): boolean {
  return startsWithBytes(b, HTTP1_VERSION_BYTES);
}

/** The preface, or as much of it as `b` holds (at least `min` bytes: "PRI *" by default,
 * which no HTTP/1 method or TLS record begins with). */
export function startsWithH2Preface(b: Uint8Array, min = 5): boolean {
  const n = Math.min(b.length, H2_PREFACE_BYTES.length);
  return n >= min && startsWithBytes(b, H2_PREFACE_BYTES, n);
}

/** An HTTP/2 frame header of a known type (0-9) whose reserved stream-id bit is clear: what
 * a stream joined in the middle may start with. */
export function looksLikeH2Frame(b: Uint8Array): boolean {
  return b.length >= 9 && b[3]! <= 9 && (b[5]! & 0x80) === 0;
}

/** A TLS record header: handshake (22), version 3.x with x at most 4. */
export function isTlsRecord(b: Uint8Array): boolean {
  return b.length >= 3 && b[0] === 0x16 && b[1] === 0x03 && b[2]! <= 0x04;
}
