// What the first bytes of a stream say it is: the one place tapwire states how HTTP/1, HTTP/2,
// TLS, Redis and (on a connection joined after its upgrade) WebSocket begin. The kernel's classify() in bpf/tapwire.bpf.c states the same facts in C (a
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

/** Whether `b` is exactly whole WebSocket frames from its first byte (at most 16): each a
 * final frame of a known opcode, a control frame at most 125 bytes, its length field matching
 * the bytes — what tells a joined connection's frames from another binary protocol. The
 * kernel's ws_frame_like() asks the same of a syscall's bytes, holding exactly one frame. */
export function looksLikeWebSocketFrames(b: Uint8Array): boolean {
  let at = 0;
  let frames = 0;
  while (at < b.length && frames < 16) {
    if (b.length - at < 2) return false;
    const b0 = b[at]!;
    const b1 = b[at + 1]!;
    const opcode = b0 & 0x0f;
    // FIN set, RSV2/RSV3 clear, text, binary, close, ping or pong.
    if ((b0 & 0xb0) !== 0x80 || !(opcode === 1 || opcode === 2 || opcode === 8 || opcode === 9 || opcode === 10)) return false;
    const len7 = b1 & 0x7f;
    let head = 2 + (b1 & 0x80 ? 4 : 0);
    let len = len7;
    if (len7 === 126) {
      if (b.length - at < 4) return false;
      len = (b[at + 2]! << 8) | b[at + 3]!;
      head += 2;
    } else if (len7 === 127) {
      if (b.length - at < 10 || b[at + 2] || b[at + 3] || b[at + 4] || b[at + 5]) return false;
      len = ((b[at + 6]! << 24) | (b[at + 7]! << 16) | (b[at + 8]! << 8) | b[at + 9]!) >>> 0;
      head += 8;
    }
    if (opcode >= 8 && len > 125) return false; // control frames are short
    at += head + len;
    frames++;
  }
  return at === b.length && frames > 0;
}

/** A Redis command: a RESP array of 1-9999 elements whose first is a bulk string
 * ("*3\r\n$3\r\nSET..."), as every client sends commands (a server's first bytes come
 * only after a command). */
export function isRedisCommandStart(b: Uint8Array): boolean {
  if (b.length < 6 || b[0] !== 0x2a || b[1]! < 0x31 || b[1]! > 0x39) return false;
  let i = 2;
  while (i < 5 && b[i]! >= 0x30 && b[i]! <= 0x39) i++;
  return b[i] === 0x0d && b[i + 1] === 0x0a && b[i + 2] === 0x24;
}
