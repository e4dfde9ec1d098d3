// Builds HTTP/2 bytes for tests: frames, and header blocks from the HPACK representations
// tests want to control (indexed, literal with or without indexing; no Huffman).
export function h2frame(type: number, flags: number, stream: number, payload: Uint8Array | number[] = []): Uint8Array {
  const p = payload instanceof Uint8Array ? payload : new Uint8Array(payload);
  const out = new Uint8Array(9 + p.length);
  out[0] = p.length >> 16;
  out[1] = (p.length >> 8) & 0xff;
  out[2] = p.length & 0xff;
  out[3] = type;
  out[4] = flags;
  new DataView(out.buffer).setUint32(5, stream);
  out.set(p, 9);
  return out;
}

export type Rep =
  | { indexed: number }
  | { literal: [string, string]; index?: boolean }
  | { literalIndexedName: number; value: string; index?: boolean };

function int(prefixBits: number, first: number, n: number): number[] {
  const max = (1 << prefixBits) - 1;
  if (n < max) return [first | n];
  const out = [first | max];
  n -= max;
  while (n >= 128) {
    out.push((n & 0x7f) | 0x80);
    n >>= 7;
  }
  out.push(n);
  return out;
}

function str(s: string): number[] {
  const b = [...Buffer.from(s, "latin1")];
  return [...int(7, 0, b.length), ...b];
}

/** A header block of the given representations. */
export function headerBlock(reps: Rep[]): Uint8Array {
  const out: number[] = [];
  for (const r of reps) {
    if ("indexed" in r) out.push(...int(7, 0x80, r.indexed));
    else if ("literal" in r) out.push(...(r.index ? [0x40] : [0x00]), ...str(r.literal[0]), ...str(r.literal[1]));
    else out.push(...(r.index ? int(6, 0x40, r.literalIndexedName) : int(4, 0x00, r.literalIndexedName)), ...str(r.value));
  }
  return new Uint8Array(out);
}

/** Literal fields without indexing: what tests use when the table does not matter. */
export function plainBlock(fields: [string, string][]): Uint8Array {
  return headerBlock(fields.map((f) => ({ literal: f })));
}

export const PREFACE = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
export const H2 = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, PUSH_PROMISE: 5, GOAWAY: 7, CONTINUATION: 9 } as const;
export const END_STREAM = 1;
export const END_HEADERS = 4;
