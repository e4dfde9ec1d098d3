// A protobuf message read without its schema, as JSON keyed by field number, with
// @bufbuild/protobuf's wire reader. Length-delimited fields are shown as a nested message
// when they parse as one, as text when they are printable UTF-8, else as base64; repeated
// field numbers become arrays. Varints are unsigned decimals (a schema would say whether
// they are signed, zigzag, bool or enum). Never throws: bytes that are not protobuf give
// undefined.
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";

export type WireValue = string | number | WireObject | WireValue[];
export interface WireObject {
  [field: string]: WireValue;
}

const MAX_DEPTH = 16;
const utf8 = new TextDecoder("utf-8", { fatal: true });

export function wireToJson(bytes: Uint8Array): string | undefined {
  const obj = readMessage(bytes, 0);
  return obj === undefined ? undefined : JSON.stringify(obj);
}

function readMessage(bytes: Uint8Array, depth: number): WireObject | undefined {
  if (depth > MAX_DEPTH) return undefined;
  const out: WireObject = {};
  const r = new BinaryReader(bytes);
  try {
    while (r.pos < r.len) {
      const [field, wire] = r.tag();
      if (field <= 0) return undefined;
      let v: WireValue;
      switch (wire) {
        case WireType.Varint:
          v = r.uint64().toString();
          break;
        case WireType.Bit64:
          v = `0x${r.fixed64().toString(16).padStart(16, "0")}`;
          break;
        case WireType.Bit32:
          v = `0x${r.fixed32().toString(16).padStart(8, "0")}`;
          break;
        case WireType.LengthDelimited:
          v = readBytes(r.bytes(), depth);
          break;
        default:
          return undefined; // groups (deprecated) and invalid wire types
      }
      if (r.pos > r.len) return undefined;
      // A field number seen again is a repeated field: its values become an array.
      const key = String(field);
      const prev = out[key];
      if (prev === undefined) out[key] = v;
      else if (Array.isArray(prev)) prev.push(v);
      else out[key] = [prev, v];
    }
  } catch {
    return undefined;
  }
  return out;
}

function readBytes(b: Uint8Array, depth: number): WireValue {
  if (b.length > 0) {
    const nested = readMessage(b, depth + 1);
    // Text that happens to parse as protobuf is still shown as text when it reads as text.
    const text = printable(b);
    if (nested !== undefined && (text === undefined || Object.keys(nested).length > 0 && !looksLikeWords(text))) return nested;
    if (text !== undefined) return text;
  } else return "";
  return `base64:${Buffer.from(b).toString("base64")}`;
}

function printable(b: Uint8Array): string | undefined {
  let s: string;
  try {
    s = utf8.decode(b);
  } catch {
    return undefined;
  }
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) return undefined;
  }
  return s;
}

/** Mostly letters, digits, spaces and punctuation: what people write. */
function looksLikeWords(s: string): boolean {
  return /^[\p{L}\p{N}\p{P}\p{Zs}\t\r\n]*$/u.test(s);
}
