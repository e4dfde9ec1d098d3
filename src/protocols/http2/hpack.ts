// HPACK (RFC 7541) header-block decoder: one decoder per direction of an HTTP/2 connection,
// fed each complete header block (HEADERS or PUSH_PROMISE plus its CONTINUATIONs) in order.
//
// Names and values come out as latin1 strings, one char per octet: HTTP field values are
// octets, not text (RFC 9110 §5.5), and a 1:1 mapping keeps every byte, including invalid
// UTF-8, and keeps string length equal to octet length for the table's size accounting.
//
// When capture starts after the connection did (joinedMidStream), the peer's dynamic table
// holds entries this decoder never saw. References to them come out marked `unknown` rather
// than failing, until the table is provably in sync again (see `partial` below).
//
// Hot path: Huffman strings are decoded a byte at a time through a 256-state table (built once,
// on first use), the dynamic table is a ring (no shifting on insert), and strings are cut with
// Buffer#latin1Slice (native). Plain data out: no tapwire imports.

export interface HeaderField {
  name: string;
  value: string;
  neverIndexed?: boolean;
  /** set when the field referred to a dynamic-table entry this decoder never saw (joined a connection mid-stream): name and/or value are unknown */
  unknown?: "name" | "value" | "both";
}

export class HpackError extends Error {
  override name = "HpackError";
}

export interface HpackDecoder {
  /** Decodes one complete header block (HEADERS + CONTINUATION payloads joined). Throws HpackError on malformed input; the decoder state is then undefined (the caller treats the connection's header state as lost). */
  decode(block: Uint8Array): HeaderField[];
  setMaxTableSize(n: number): void;
  /** current dynamic table size in octets and entry count, for tests/diagnostics */
  readonly tableSize: number;
  readonly tableLength: number;
}

/** SETTINGS_HEADER_TABLE_SIZE until the peer says otherwise (RFC 9113 §6.5.2). */
const DEFAULT_TABLE_SIZE = 4096;
/** Per-entry overhead in the size accounting (RFC 7541 §4.1). */
const ENTRY_OVERHEAD = 32;
/** Integers above this are taken as malformed: no real index, length or table size comes near. */
const MAX_INTEGER = 0x7fffffff;
/** 2^31 needs 5 continuation bytes; one more allows a redundant zero group, more is garbage. */
const MAX_CONTINUATION_BYTES = 6;

// ---------------------------------------------------------------------------------------------
// Static table (RFC 7541 Appendix A). Index 0 is unused so that the HPACK index is the array index.

const STATIC: readonly (readonly [string, string])[] = [
  ["", ""],
  [":authority", ""],
  [":method", "GET"],
  [":method", "POST"],
  [":path", "/"],
  [":path", "/index.html"],
  [":scheme", "http"],
  [":scheme", "https"],
  [":status", "200"],
  [":status", "204"],
  [":status", "206"],
  [":status", "304"],
  [":status", "400"],
  [":status", "404"],
  [":status", "500"],
  ["accept-charset", ""],
  ["accept-encoding", "gzip, deflate"],
  ["accept-language", ""],
  ["accept-ranges", ""],
  ["accept", ""],
  ["access-control-allow-origin", ""],
  ["age", ""],
  ["allow", ""],
  ["authorization", ""],
  ["cache-control", ""],
  ["content-disposition", ""],
  ["content-encoding", ""],
  ["content-language", ""],
  ["content-length", ""],
  ["content-location", ""],
  ["content-range", ""],
  ["content-type", ""],
  ["cookie", ""],
  ["date", ""],
  ["etag", ""],
  ["expect", ""],
  ["expires", ""],
  ["from", ""],
  ["host", ""],
  ["if-match", ""],
  ["if-modified-since", ""],
  ["if-none-match", ""],
  ["if-range", ""],
  ["if-unmodified-since", ""],
  ["last-modified", ""],
  ["link", ""],
  ["location", ""],
  ["max-forwards", ""],
  ["proxy-authenticate", ""],
  ["proxy-authorization", ""],
  ["range", ""],
  ["referer", ""],
  ["refresh", ""],
  ["retry-after", ""],
  ["server", ""],
  ["set-cookie", ""],
  ["strict-transport-security", ""],
  ["transfer-encoding", ""],
  ["user-agent", ""],
  ["vary", ""],
  ["via", ""],
  ["www-authenticate", ""],
];
const STATIC_COUNT = STATIC.length - 1; // 61
const STATIC_NAMES = STATIC.map((e) => e[0]);
const STATIC_VALUES = STATIC.map((e) => e[1]);

// ---------------------------------------------------------------------------------------------
// Huffman code (RFC 7541 Appendix B). The code is canonical: within one length, codes rise with
// the symbol, and each length starts where the previous one ended (shifted). So the code lengths
// alone define it; the codes are rebuilt from them below and checked for completeness.

// prettier-ignore
const CODE_LENGTHS = [
  // 0x00-0x1f: control octets
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28,
  28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
  // ' ' ! " # $ % & ' ( ) * + , - . /
   6, 10, 10, 12, 13,  6,  8, 11, 10, 10,  8, 11,  8,  6,  6,  6,
  // 0-9 : ; < = > ?
   5,  5,  5,  6,  6,  6,  6,  6,  6,  6,  7,  8, 15,  6, 12, 10,
  // @ A-O
  13,  6,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,
  // P-Z [ \ ] ^ _
   7,  7,  7,  7,  7,  7,  7,  7,  8,  7,  8, 13, 19, 13, 14,  6,
  // ` a-o
  15,  5,  6,  5,  6,  5,  6,  6,  6,  5,  7,  7,  6,  6,  6,  5,
  // p-z { | } ~ DEL
   6,  7,  6,  5,  5,  6,  7,  7,  7,  7,  7, 15, 11, 14, 13, 28,
  // 0x80-0xff
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23,
  24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23,
  21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25,
  19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23,
  26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
  // EOS
  30,
];
const EOS = 256;

/** The code of each symbol, right-aligned (bit length in CODE_LENGTHS). */
export const HUFFMAN_CODES = new Uint32Array(257);
{
  const order = [...CODE_LENGTHS.keys()].sort((a, b) => CODE_LENGTHS[a]! - CODE_LENGTHS[b]! || a - b);
  let code = 0;
  let len = 0;
  for (const sym of order) {
    code *= 2 ** (CODE_LENGTHS[sym]! - len);
    len = CODE_LENGTHS[sym]!;
    HUFFMAN_CODES[sym] = code++;
  }
  // A complete prefix code ends with all ones: the next code would be 2^30.
  if (code !== 2 ** 30 || HUFFMAN_CODES[EOS] !== 0x3fffffff) throw new Error("hpack: Huffman code table is inconsistent");
}
export { CODE_LENGTHS as HUFFMAN_CODE_LENGTHS };

// The decoding automaton. Its states are the 256 inner nodes of the code tree (root = 0): the
// bits read since the last complete symbol. step[state << 8 | octet] packs what reading one
// octet does: the next state (bits 0-7), up to two symbols (bits 8-15, 16-23; codes are at
// least 5 bits long, so at most two end within 8 bits), how many (bits 24-25), and whether EOS
// was read (bit 26), an error inside a string (§5.2). Building it walks the tree 2^19 times
// (several ms), so it is built on the first Huffman string, not at module load.
const STEP_FAIL = 1 << 26;
interface Automaton {
  step: Uint32Array;
  /** 1 for the states a string may end in: padding of at most 7 bits, all ones (a prefix of EOS). */
  accept: Uint8Array;
}
let automaton: Automaton | undefined;

function buildAutomaton(): Automaton {
  const LEAF = 0x1000;
  const kids = new Int32Array(512).fill(-1); // kids[node * 2 + bit]: inner node, or LEAF | symbol
  let nodes = 1;
  for (let sym = 0; sym <= EOS; sym++) {
    const code = HUFFMAN_CODES[sym]!;
    let node = 0;
    for (let bit = CODE_LENGTHS[sym]! - 1; bit > 0; bit--) {
      const slot = node * 2 + ((code >>> bit) & 1);
      if (kids[slot] === -1) kids[slot] = nodes++;
      node = kids[slot]!;
    }
    kids[node * 2 + (code & 1)] = LEAF | sym;
  }
  if (nodes !== 256) throw new Error("hpack: Huffman code tree is inconsistent");

  const step = new Uint32Array(256 * 256);
  for (let state = 0; state < 256; state++) {
    for (let octet = 0; octet < 256; octet++) {
      let node = state;
      let out = 0;
      let n = 0;
      for (let bit = 7; bit >= 0 && out !== STEP_FAIL; bit--) {
        const next = kids[node * 2 + ((octet >> bit) & 1)]!;
        if (next & LEAF) {
          const sym = next & 0x1ff;
          if (sym === EOS) out = STEP_FAIL;
          else out |= sym << (8 + 8 * n++);
          node = 0;
        } else {
          node = next;
        }
      }
      step[(state << 8) | octet] = out === STEP_FAIL ? STEP_FAIL : node | out | (n << 24);
    }
  }

  const accept = new Uint8Array(256);
  let node = 0;
  accept[0] = 1;
  for (let i = 0; i < 7; i++) {
    node = kids[node * 2 + 1]!;
    accept[node] = 1;
  }
  return (automaton = { step, accept });
}

// ---------------------------------------------------------------------------------------------
// The input cursor. decode() is synchronous and never re-entered, so one shared cursor serves
// every decoder and the primitives below return plain values without allocating.

/** Buffer#latin1Slice is what toString("latin1", start, end) ends in, minus its argument
 * handling: a quarter faster on short strings, the bulk of header work. Node and Bun both have
 * it; the typings do not. Callers keep start <= end <= length. */
type Latin1Buffer = Buffer & { latin1Slice(start: number, end: number): string };
const asLatin1 = (bytes: Uint8Array) => (bytes instanceof Buffer ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)) as Latin1Buffer;

let src = asLatin1(new Uint8Array(0));
let at = 0;
let end = 0;
/** Output of Huffman decoding before it becomes a string; grown as needed, never shrunk. */
let scratch = asLatin1(Buffer.allocUnsafe(4096));

/** Reads an integer with an N-bit prefix (§5.1) at the cursor. */
function readInteger(prefixBits: number): number {
  if (at >= end) throw new HpackError(`truncated integer at offset ${at}`);
  const max = (1 << prefixBits) - 1;
  let value = src[at++]! & max;
  if (value < max) return value;
  let scale = 1;
  for (let i = 0; i < MAX_CONTINUATION_BYTES; i++) {
    if (at >= end) throw new HpackError(`truncated integer at offset ${at}`);
    const b = src[at++]!;
    value += (b & 0x7f) * scale;
    if (value > MAX_INTEGER) throw new HpackError(`integer overflow at offset ${at - 1}`);
    if ((b & 0x80) === 0) return value;
    scale *= 128;
  }
  throw new HpackError(`integer too long at offset ${at}`);
}

/** Reads a string literal (§5.2) at the cursor. */
function readString(): string {
  if (at >= end) throw new HpackError(`truncated string at offset ${at}`);
  const huffman = (src[at]! & 0x80) !== 0;
  const len = readInteger(7);
  if (len > end - at) throw new HpackError(`string of ${len} octets overruns the block at offset ${at}`);
  const start = at;
  at += len;
  return huffman ? huffmanDecode(start, at) : src.latin1Slice(start, at);
}

function huffmanDecode(start: number, stop: number): string {
  const { step, accept } = automaton ?? buildAutomaton();
  if (scratch.length < 2 * (stop - start)) scratch = asLatin1(Buffer.allocUnsafe(Math.max(2 * (stop - start), 2 * scratch.length)));
  const out = scratch;
  let n = 0;
  let state = 0;
  for (let i = start; i < stop; i++) {
    const s = step[(state << 8) | src[i]!]!;
    if (s & STEP_FAIL) throw new HpackError(`EOS inside a Huffman string at offset ${i}`);
    const count = s >>> 24;
    if (count !== 0) {
      out[n++] = (s >>> 8) & 0xff;
      if (count === 2) out[n++] = (s >>> 16) & 0xff;
    }
    state = s & 0xff;
  }
  if (accept[state] === 0) throw new HpackError(`bad Huffman padding before offset ${stop}`);
  return out.latin1Slice(0, n);
}

/** Decodes one integer (§5.1) from `bytes` at `offset`; for tests and diagnostics. */
export function decodeInteger(bytes: Uint8Array, offset: number, prefixBits: number): { value: number; next: number } {
  const saved = [src, at, end] as const;
  src = asLatin1(bytes);
  at = offset;
  end = bytes.length;
  try {
    const value = readInteger(prefixBits);
    return { value, next: at };
  } finally {
    [src, at, end] = saved;
  }
}

// ---------------------------------------------------------------------------------------------

/** Entry flag: the entry was inserted with a name this decoder never saw (mid-stream join). */
const UNKNOWN_NAME = 1;

export function createHpackDecoder(opts: { maxTableSize?: number; joinedMidStream?: boolean } = {}): HpackDecoder {
  /** The limit a size update may not exceed: SETTINGS_HEADER_TABLE_SIZE as told. */
  let limit = checkSize(opts.maxTableSize ?? DEFAULT_TABLE_SIZE);
  /** The table's current maximum, as last set by a size update (starts at the limit). */
  let maxSize = limit;

  // The dynamic table as a ring: `head` holds the newest entry (HPACK index 62), older ones
  // sit at descending slots. It doubles when full rather than being sized from maxSize up front,
  // so a large SETTINGS_HEADER_TABLE_SIZE costs memory only for entries really inserted.
  let cap = 16;
  let names: string[] = new Array(cap).fill("");
  let values: string[] = new Array(cap).fill("");
  let flags = new Uint8Array(cap);
  let head = cap - 1;
  let count = 0;
  let size = 0;

  // Joined mid-stream: the peer's table may hold entries older than all of ours, so an index
  // past our entries is "unknown", not an error. Our entries are the peer's newest ones in the
  // same order (each insertion is mirrored, even with an unknown name), so indices into them
  // are exact. Sizes of entries with unknown names count their value only: a lower bound, so
  // we never evict an entry the peer still has.
  //
  // The rule for leaving this mode: as soon as size + 32 > maxSize, i.e. our entries leave no
  // room for even one more (empty) entry, nothing older can still be in the peer's table. This
  // is checked after every insertion and size update (a size update to 0 always satisfies it).
  // maxSize is the limit as told until the first size update is seen, and exact after it; the
  // rule therefore relies on the limit being an upper bound of what the peer really uses.
  let partial = opts.joinedMidStream === true;
  checkSync();

  // The result of lookup(): module-level-like scratch to avoid allocating per field.
  let lkName = "";
  let lkValue = "";
  let lkUnknown: HeaderField["unknown"] = undefined;

  function checkSize(n: number): number {
    if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`hpack: bad table size ${n}`);
    return n;
  }

  function checkSync(): void {
    if (partial && size + ENTRY_OVERHEAD > maxSize) partial = false;
  }

  /** Doubles the ring, keeping the entries and their order. */
  function grow(): void {
    const want = cap * 2;
    const n: string[] = new Array(want).fill("");
    const v: string[] = new Array(want).fill("");
    const f = new Uint8Array(want);
    // Oldest first, so that the newest lands at slot count - 1.
    for (let i = 0; i < count; i++) {
      const from = slot(count - 1 - i);
      n[i] = names[from]!;
      v[i] = values[from]!;
      f[i] = flags[from]!;
    }
    names = n;
    values = v;
    flags = f;
    cap = want;
    head = count - 1;
  }

  /** Ring slot of the entry `i` places older than the newest. */
  function slot(i: number): number {
    const s = head - i;
    return s < 0 ? s + cap : s;
  }

  function evictTo(max: number): void {
    while (count > 0 && size > max) {
      const s = slot(count - 1);
      size -= names[s]!.length + values[s]!.length + ENTRY_OVERHEAD;
      names[s] = values[s] = ""; // let the strings go
      count--;
    }
  }

  function insert(name: string, value: string, flag: number): void {
    // name.length is the octet count: strings are latin1, one char per octet.
    const esize = name.length + value.length + ENTRY_OVERHEAD;
    if (esize > maxSize) {
      // Too big for the table: it empties the table and is not added (§4.4).
      evictTo(0);
      return;
    }
    evictTo(maxSize - esize);
    if (count === cap) grow();
    head = head + 1 === cap ? 0 : head + 1;
    names[head] = name;
    values[head] = value;
    flags[head] = flag;
    count++;
    size += esize;
  }

  /** Sets lkName/lkValue/lkUnknown for an index (§2.3.3); `pos` is for error messages. */
  function lookup(index: number, pos: number): void {
    if (index === 0) throw new HpackError(`index 0 at offset ${pos}`);
    if (index <= STATIC_COUNT) {
      lkName = STATIC_NAMES[index]!;
      lkValue = STATIC_VALUES[index]!;
      lkUnknown = undefined;
      return;
    }
    const i = index - STATIC_COUNT - 1;
    if (i < count) {
      const s = slot(i);
      lkName = names[s]!;
      lkValue = values[s]!;
      lkUnknown = flags[s] === UNKNOWN_NAME ? "name" : undefined;
      return;
    }
    if (!partial) throw new HpackError(`index ${index} beyond the table (${count} dynamic entries) at offset ${pos}`);
    lkName = lkValue = "";
    lkUnknown = "both";
  }

  function decode(block: Uint8Array): HeaderField[] {
    src = asLatin1(block);
    at = 0;
    end = block.length;
    const fields: HeaderField[] = [];
    while (at < end) {
      const pos = at;
      const b = src[at]!;
      if (b & 0x80) {
        // Indexed field (§6.1).
        lookup(readInteger(7), pos);
        fields.push(field(lkName, lkValue, false, lkUnknown));
      } else if ((b & 0xe0) === 0x20) {
        // Dynamic table size update (§6.3): only before the first field of a block (§4.2).
        if (fields.length > 0) throw new HpackError(`table size update after a field at offset ${pos}`);
        const n = readInteger(5);
        if (n > limit) throw new HpackError(`table size update to ${n} above the limit ${limit} at offset ${pos}`);
        maxSize = n;
        evictTo(n);
        checkSync();
      } else {
        // Literal (§6.2): with incremental indexing (01), without indexing (0000), never indexed (0001).
        const indexing = (b & 0x40) !== 0;
        const neverIndexed = !indexing && (b & 0x10) !== 0;
        const index = readInteger(indexing ? 6 : 4);
        let name: string;
        let unknown: HeaderField["unknown"] = undefined;
        if (index === 0) {
          name = readString();
        } else {
          lookup(index, pos);
          name = lkName;
          if (lkUnknown !== undefined) unknown = "name";
        }
        const value = readString();
        if (indexing) {
          insert(name, value, unknown ? UNKNOWN_NAME : 0);
          checkSync();
        }
        fields.push(field(name, value, neverIndexed, unknown));
      }
    }
    return fields;
  }

  return {
    decode,
    setMaxTableSize(n: number): void {
      // Only the bound for later size updates changes: the peer's encoder shrinks its table
      // itself, with a size update at the start of its next block (§4.2).
      limit = checkSize(n);
    },
    get tableSize() {
      return size;
    },
    get tableLength() {
      return count;
    },
  };
}

function field(name: string, value: string, neverIndexed: boolean, unknown: HeaderField["unknown"]): HeaderField {
  if (unknown !== undefined) return neverIndexed ? { name, value, neverIndexed, unknown } : { name, value, unknown };
  return neverIndexed ? { name, value, neverIndexed } : { name, value };
}
