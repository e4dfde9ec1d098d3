// The byte values the HTTP/1 readers look for, and header bytes made into text. Shared by
// every module here so that each reads the same line ends and decodes text the same way.

export const LF = 0x0a;
export const CR = 0x0d;
export const SP = 0x20;
export const HTAB = 0x09;

export const EMPTY = new Uint8Array(0);

const utf8 = new TextDecoder("utf-8", { fatal: true });

type SliceFn = (this: Uint8Array, start: number, end: number) => string;
/** Bun's Buffer.prototype.utf8Slice reads any Uint8Array without making a view of it (a view
 * costs about as much as decoding a head). Used only if it behaves as expected here. */
const utf8Slice = ((): SliceFn | null => {
  const f = (Buffer.prototype as unknown as { utf8Slice?: SliceFn }).utf8Slice;
  try {
    return typeof f === "function" && f.call(Uint8Array.of(0x41, 0xc3, 0xa9, 0x42), 1, 4) === "\u00e9B" ? f : null;
  } catch {
    return null;
  }
})();

/** Header text: UTF-8 when the bytes are valid UTF-8 (ASCII is), else latin1, byte for byte. */
export function decodeText(buf: Uint8Array, start: number, end: number): string {
  if (utf8Slice !== null) {
    // Lenient decoding replaces what is not UTF-8 with U+FFFD: without one, it was all UTF-8.
    const text = utf8Slice.call(buf, start, end);
    if (text.indexOf("\ufffd") < 0) return text;
  }
  try {
    return utf8.decode(buf.subarray(start, end));
  } catch {
    return Buffer.from(buf.buffer, buf.byteOffset + start, end - start).toString("latin1");
  }
}
