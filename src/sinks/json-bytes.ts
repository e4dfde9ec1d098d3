// JSON written straight into UTF-8 bytes, for the flows printed at full speed: no object to
// build, no string to flatten, no second pass to encode. Strings are escaped exactly as
// JSON.stringify escapes them (", \, the short escapes, other controls and lone surrogates as
// \u with lowercase hex; everything else as UTF-8), so the bytes equal what
// TextEncoder.encode(JSON.stringify(...)) would give. Members are written in the order the
// caller gives; a comma goes before every member or element but the first.
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const HEX = [0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66];
/** The letter after the backslash for the controls JSON.stringify writes short; 0: \u00XX. */
const SHORT_ESCAPE = new Uint8Array(0x20);
SHORT_ESCAPE[0x08] = 0x62; // \b
SHORT_ESCAPE[0x09] = 0x74; // \t
SHORT_ESCAPE[0x0a] = 0x6e; // \n
SHORT_ESCAPE[0x0c] = 0x66; // \f
SHORT_ESCAPE[0x0d] = 0x72; // \r
const BASE64 = new TextEncoder().encode("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");
const EQUALS = 0x3d;
const INITIAL = 64 * 1024;
/** A buffer grown past this for one large flow is not kept. */
const MAX_KEPT = 4 << 20;
/** Bodies this long or longer are encoded by the engine (see base64). */
const NATIVE_BASE64 = 64;

const encoder = new TextEncoder();

/** A member name as written: `"name":`, encoded once. */
export type Key = Uint8Array;

export function key(name: string): Key {
  return encoder.encode(`${JSON.stringify(name)}:`);
}

export class JsonBytes {
  buf: Buffer = Buffer.allocUnsafe(INITIAL);
  at = 0;
  /** Per open object or array: whether a member or element was written. */
  private filled: boolean[] = [];
  private depth = 0;

  /** Starts over at the beginning of the buffer. */
  reset(): void {
    this.at = 0;
    this.depth = 0;
  }

  /** The bytes written since reset (a view: valid until the next reset). */
  view(): Uint8Array {
    return this.buf.subarray(0, this.at);
  }

  /** Gives back a buffer grown large for one big value (call between values). */
  shrink(): void {
    if (this.buf.length > MAX_KEPT) this.buf = Buffer.allocUnsafe(INITIAL);
  }

  /** Room for n more bytes. */
  ensure(n: number): void {
    if (this.at + n <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.at + n));
    grown.set(this.buf.subarray(0, this.at));
    this.buf = grown;
  }

  open(brace: number): void {
    this.ensure(1);
    this.buf[this.at++] = brace;
    this.filled[++this.depth] = false;
  }

  close(brace: number): void {
    this.ensure(1);
    this.buf[this.at++] = brace;
    this.depth--;
  }

  /** The comma before a member or element, unless it is the first. */
  private next(): void {
    if (this.filled[this.depth]) {
      this.ensure(1);
      this.buf[this.at++] = 0x2c;
    } else this.filled[this.depth] = true;
  }

  /** A member's name (the value follows). */
  member(k: Key): void {
    this.next();
    this.raw(k);
  }

  /** An array element (the value follows). */
  element(): void {
    this.next();
  }

  /** Bytes that are JSON already. */
  raw(b: Uint8Array): void {
    const n = b.length;
    this.ensure(n);
    const out = this.buf;
    let i = this.at;
    for (let j = 0; j < n; j++) out[i++] = b[j]!;
    this.at = i;
  }

  /** A non-negative integer below 2^53. */
  uint(n: number): void {
    this.ensure(16);
    const out = this.buf;
    if (n < 10) {
      out[this.at++] = 0x30 + n;
      return;
    }
    let digits = 0;
    for (let m = n; m >= 1; m = Math.floor(m / 10)) digits++;
    let i = this.at + digits;
    this.at = i;
    for (let m = n; m >= 1; m = Math.floor(m / 10)) out[--i] = 0x30 + (m % 10);
  }

  /** An integer below 2^53 in magnitude. */
  int(n: number): void {
    if (n < 0) {
      this.ensure(1);
      this.buf[this.at++] = 0x2d;
      n = -n;
    }
    this.uint(n);
  }

  /** A string value, quoted and escaped. */
  string(s: string): void {
    const len = s.length;
    // At most 6 bytes per UTF-16 unit (\uXXXX), and the quotes.
    this.ensure(len * 6 + 2);
    const out = this.buf;
    let i = this.at;
    out[i++] = QUOTE;
    for (let j = 0; j < len; j++) {
      const c = s.charCodeAt(j);
      if (c < 0x80) {
        if (c >= 0x20) {
          if (c === QUOTE || c === BACKSLASH) out[i++] = BACKSLASH;
          out[i++] = c;
          continue;
        }
        out[i++] = BACKSLASH;
        const short = SHORT_ESCAPE[c]!;
        if (short !== 0) {
          out[i++] = short;
          continue;
        }
        out[i++] = 0x75; // u00XX
        out[i++] = 0x30;
        out[i++] = 0x30;
        out[i++] = HEX[c >> 4]!;
        out[i++] = HEX[c & 15]!;
        continue;
      }
      if (c < 0x800) {
        out[i++] = 0xc0 | (c >> 6);
        out[i++] = 0x80 | (c & 63);
        continue;
      }
      if (c >= 0xd800 && c <= 0xdfff) {
        const d = j + 1 < len ? s.charCodeAt(j + 1) : 0;
        if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) {
          // A surrogate pair: one code point, four bytes.
          const cp = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
          out[i++] = 0xf0 | (cp >> 18);
          out[i++] = 0x80 | ((cp >> 12) & 63);
          out[i++] = 0x80 | ((cp >> 6) & 63);
          out[i++] = 0x80 | (cp & 63);
          j++;
          continue;
        }
        // A lone surrogate: escaped, as JSON.stringify does.
        out[i++] = BACKSLASH;
        out[i++] = 0x75;
        out[i++] = HEX[c >> 12]!;
        out[i++] = HEX[(c >> 8) & 15]!;
        out[i++] = HEX[(c >> 4) & 15]!;
        out[i++] = HEX[c & 15]!;
        continue;
      }
      out[i++] = 0xe0 | (c >> 12);
      out[i++] = 0x80 | ((c >> 6) & 63);
      out[i++] = 0x80 | (c & 63);
    }
    out[i++] = QUOTE;
    this.at = i;
  }

  /** Bytes as a quoted, padded standard base64 string. */
  base64(b: Uint8Array): void {
    const n = b.length;
    this.ensure(Math.ceil(n / 3) * 4 + 2);
    const out = this.buf;
    let i = this.at;
    out[i++] = QUOTE;
    if (n >= NATIVE_BASE64) {
      // The engine's encoder, then its ASCII copied in: 4-5 times faster past a few hundred
      // bytes (bench/replay.ts); below this the two calls cost more than the loop.
      i += out.write((b as Uint8Array & { toBase64(): string }).toBase64(), i, "latin1");
      out[i++] = QUOTE;
      this.at = i;
      return;
    }
    let j = 0;
    for (; j + 2 < n; j += 3) {
      const v = (b[j]! << 16) | (b[j + 1]! << 8) | b[j + 2]!;
      out[i++] = BASE64[v >> 18]!;
      out[i++] = BASE64[(v >> 12) & 63]!;
      out[i++] = BASE64[(v >> 6) & 63]!;
      out[i++] = BASE64[v & 63]!;
    }
    if (j < n) {
      const two = j + 1 < n;
      const v = (b[j]! << 16) | (two ? b[j + 1]! << 8 : 0);
      out[i++] = BASE64[v >> 18]!;
      out[i++] = BASE64[(v >> 12) & 63]!;
      out[i++] = two ? BASE64[(v >> 6) & 63]! : EQUALS;
      out[i++] = EQUALS;
    }
    out[i++] = QUOTE;
    this.at = i;
  }

  /** A 64-bit integer as proto JSON writes it: a quoted decimal. */
  int64String(v: bigint): void {
    this.ensure(22);
    this.buf[this.at++] = QUOTE;
    if (v >= 0n && v <= 9007199254740991n) this.uint(Number(v));
    else this.raw(encoder.encode(String(v)));
    this.buf[this.at++] = QUOTE;
  }

  /** true (proto JSON leaves false out). */
  true(): void {
    this.raw(TRUE);
  }
}

const TRUE = encoder.encode("true");
