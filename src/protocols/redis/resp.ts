// RESP (the Redis serialization protocol, RESP2 and RESP3) read incrementally: bytes in, whole
// values out, however the stream is split. Bounded: a bulk string keeps at most `maxBulk`
// bytes (the rest are skipped as they come, never buffered), an aggregate at most `maxItems`
// elements (the rest are read and counted), nesting at most 32 deep. A byte that cannot
// start a value makes the reader stop: RESP has no marker to find the next value by.

export type RespValue =
  | { type: "simple" | "error" | "bignum" | "double"; text: string }
  | { type: "integer"; value: bigint }
  | { type: "boolean"; value: boolean }
  | { type: "null" }
  /** size: the announced length; data: its first maxBulk bytes. */
  | { type: "bulk" | "verbatim" | "blob-error"; data: Uint8Array; size: number; truncated: boolean }
  /** count: the announced number of elements (pairs counted twice for maps); items: the first maxItems. */
  | { type: "array" | "set" | "push" | "map" | "attribute"; items: RespValue[]; count: number };

export interface RespReaderOptions {
  maxBulk: number;
  /** Bulk bytes kept per top-level value, all its strings together (an MGET of a thousand
   * large values keeps this much, not a thousand times maxBulk). */
  maxValueBytes: number;
  maxItems: number;
  /** A whole top-level value; `tsNs` of the push that completed it. */
  onValue(value: RespValue, tsNs: number): void;
}

export interface RespReader {
  push(bytes: Uint8Array, tsNs: number): void;
  /** Why reading stopped, once it has (then pushes are ignored). */
  readonly failed: string | undefined;
  /** Bytes taken into a value not yet whole. */
  readonly pending: boolean;
}

const MAX_LINE = 64 * 1024;
const MAX_DEPTH = 32;
const AGGREGATES: Record<number, "array" | "set" | "push" | "map" | "attribute"> = { 0x2a: "array", 0x7e: "set", 0x3e: "push", 0x25: "map", 0x7c: "attribute" };
const latin1 = new TextDecoder("latin1");
const EMPTY = new Uint8Array(0);
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

interface Frame {
  value: Extract<RespValue, { items: RespValue[] }>;
  remaining: number;
}

export function createRespReader(opts: RespReaderOptions): RespReader {
  let line: number[] = [];
  let sawCr = false;
  /** In a bulk string: bytes of it still to come, and then its CRLF. */
  let bulk: { value: Extract<RespValue, { data: Uint8Array }>; kept: Uint8Array; have: number; left: number } | undefined;
  let crlfLeft = 0;
  const stack: Frame[] = [];
  let failed: string | undefined;

  /** Bulk bytes kept so far in the top-level value being read. */
  let keptInValue = 0;
  const complete = (v: RespValue, tsNs: number) => {
    let value = v;
    for (;;) {
      const top = stack.at(-1);
      if (!top) {
        keptInValue = 0;
        // An attribute (RESP3) describes the next value; it answers nothing by itself.
        if (value.type !== "attribute") opts.onValue(value, tsNs);
        return;
      }
      if (top.value.items.length < opts.maxItems) top.value.items.push(value);
      if (--top.remaining > 0) return;
      stack.pop();
      value = top.value;
    }
  };

  const header = (text: string, tsNs: number) => {
    const kind = text.charCodeAt(0);
    const rest = text.slice(1);
    const number = () => {
      if (!/^-?\d{1,19}$/.test(rest)) throw new Error(`not a length: ${JSON.stringify(text.slice(0, 40))}`);
      return Number(rest);
    };
    switch (kind) {
      case 0x2b: // +
        return complete({ type: "simple", text: rest }, tsNs);
      case 0x2d: // -
        return complete({ type: "error", text: rest }, tsNs);
      case 0x3a: // :
        if (!/^[+-]?\d{1,20}$/.test(rest)) throw new Error(`not an integer: ${JSON.stringify(rest.slice(0, 40))}`);
        return complete({ type: "integer", value: BigInt(rest) }, tsNs);
      case 0x2c: // ,
        return complete({ type: "double", text: rest }, tsNs);
      case 0x28: // (
        return complete({ type: "bignum", text: rest }, tsNs);
      case 0x23: // #
        return complete({ type: "boolean", value: rest === "t" }, tsNs);
      case 0x5f: // _
        return complete({ type: "null" }, tsNs);
      case 0x24: // $
      case 0x3d: // =
      case 0x21: // !
        return startBulk(kind, number(), tsNs);
      default: {
        const type = AGGREGATES[kind];
        if (!type) throw new Error(`no value starts with ${JSON.stringify(text[0])}`);
        return startAggregate(type, number(), tsNs);
      }
    }
  };

  const startBulk = (kind: number, n: number, tsNs: number) => {
    if (n < 0) return complete({ type: "null" }, tsNs); // RESP2's null bulk string
    const keep = Math.max(0, Math.min(n, opts.maxBulk, opts.maxValueBytes - keptInValue));
    keptInValue += keep;
    const type = kind === 0x24 ? "bulk" : kind === 0x3d ? "verbatim" : "blob-error";
    bulk = { value: { type, data: EMPTY, size: n, truncated: keep < n }, kept: new Uint8Array(keep), have: 0, left: n };
    if (n === 0) crlfLeft = 2;
  };

  const startAggregate = (type: Extract<RespValue, { items: RespValue[] }>["type"], n: number, tsNs: number) => {
    if (n < 0) return complete({ type: "null" }, tsNs); // RESP2's null array
    const count = type === "map" || type === "attribute" ? n * 2 : n;
    const value = { type, items: [], count } as Extract<RespValue, { items: RespValue[] }>;
    if (count === 0) return complete(value, tsNs);
    if (stack.length >= MAX_DEPTH) throw new Error(`nested more than ${MAX_DEPTH} deep`);
    stack.push({ value, remaining: count });
  };

  /** A header line at bytes[from, to): lengths and integers read without making a string. */
  const headerBytes = (bytes: Uint8Array, from: number, to: number, tsNs: number) => {
    const kind = bytes[from]!;
    if ((kind === 0x24 || kind === 0x2a || kind === 0x3a) && to - from <= 16) {
      let n = 0;
      let k = from + 1;
      const negative = bytes[k] === 0x2d;
      if (negative) k++;
      if (k < to) {
        for (; k < to; k++) {
          const d = bytes[k]! - 0x30;
          if (d < 0 || d > 9) break;
          n = n * 10 + d;
        }
        if (k === to) {
          const v = negative ? -n : n;
          if (kind === 0x3a) return complete({ type: "integer", value: BigInt(v) }, tsNs);
          return kind === 0x24 ? startBulk(kind, v, tsNs) : startAggregate("array", v, tsNs);
        }
      }
    }
    header(latin1.decode(bytes.subarray(from, to)), tsNs);
  };

  const push = (bytes: Uint8Array, tsNs: number) => {
    if (failed) return;
    let i = 0;
    try {
      while (i < bytes.length) {
        if (crlfLeft > 0) {
          const want = crlfLeft === 2 ? 0x0d : 0x0a;
          if (bytes[i] !== want) throw new Error("a bulk string is not followed by CRLF");
          i++;
          if (--crlfLeft === 0) {
            const b = bulk!;
            b.value.data = b.kept;
            bulk = undefined;
            complete(b.value, tsNs);
          }
          continue;
        }
        if (bulk) {
          const take = Math.min(bulk.left, bytes.length - i);
          const keep = Math.min(take, bulk.kept.length - bulk.have);
          if (keep > 0) bulk.kept.set(bytes.subarray(i, i + keep), bulk.have);
          bulk.have += keep;
          bulk.left -= take;
          i += take;
          if (bulk.left === 0) crlfLeft = 2; // its CRLF is next
          continue;
        }
        // A whole header line in this push: read in place (most lines are).
        if (!sawCr && line.length === 0) {
          const cr = bytes.indexOf(0x0d, i);
          if (cr > i && cr + 1 < bytes.length && cr - i <= MAX_LINE) {
            if (bytes[cr + 1] !== 0x0a) throw new Error("CR without LF in a header line");
            headerBytes(bytes, i, cr, tsNs);
            i = cr + 2;
            continue;
          }
        }
        const c = bytes[i++]!;
        if (sawCr) {
          if (c !== 0x0a) throw new Error("CR without LF in a header line");
          sawCr = false;
          const text = latin1.decode(Uint8Array.from(line));
          line = [];
          if (!text) throw new Error("an empty header line");
          header(text, tsNs);
          continue;
        }
        if (c === 0x0d) {
          sawCr = true;
          continue;
        }
        if (line.length >= MAX_LINE) throw new Error(`a header line longer than ${MAX_LINE} bytes`);
        line.push(c);
      }
    } catch (e) {
      failed = (e as Error).message;
    }
  };

  return {
    push,
    get failed() {
      return failed;
    },
    get pending() {
      return line.length > 0 || sawCr || !!bulk || crlfLeft > 0 || stack.length > 0;
    },
  };
}

/** A bulk string's bytes as text: UTF-8 when they are, else latin1 byte for byte. */
export function bulkText(data: Uint8Array): string {
  // Short ASCII (most keys and values) without a decoder's call.
  if (data.length <= 64) {
    let ascii = true;
    for (let i = 0; i < data.length; i++) if (data[i]! >= 0x80) ascii = false;
    if (ascii) return String.fromCharCode(...data);
  }
  try {
    return strictUtf8.decode(data);
  } catch {
    return latin1.decode(data);
  }
}
