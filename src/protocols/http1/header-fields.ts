// Field lines (`name: value`, and obs-fold continuations) read into HeaderFields, for heads
// and for chunked trailers alike. While reading, the few fields that say how to read the
// body are noted, so that they are found without a second pass over every field.
import { CR, HTAB, SP } from "./bytes.ts";
import type { HeaderField } from "./types.ts";

/** The header fields that bear on reading the body. */
export const enum BodyField {
  None,
  ContentLength,
  TransferEncoding,
  ContentEncoding,
  ContentType,
}

/** Does text[at, at + lower.length) equal `lower` (lowercase ASCII), ignoring case? Read in
 * place: comparing a freshly sliced name costs more. */
function textIs(text: string, at: number, lower: string): boolean {
  for (let i = 0; i < lower.length; i++) {
    const c = text.charCodeAt(at + i);
    const l = lower.charCodeAt(i);
    if (c !== l && !(l >= 0x61 && l <= 0x7a && c === l - 0x20)) return false;
  }
  return true;
}

/** Header lines of `text` from `i` up to its blank line, added to `fields`; each field that
 * bears on the body is noted in `noted` as its index * 8 + its BodyField. With `whole` false
 * the text was cut: its last line, unless ended, is left out. Returns where reading stopped. */
export function readFields(text: string, i: number, fields: HeaderField[], whole: boolean, noted: number[]): number {
  const len = text.length;
  while (i < len) {
    let nl = text.indexOf("\n", i);
    if (nl < 0) {
      if (!whole) return len;
      nl = len;
    }
    let e = nl;
    if (e > i && text.charCodeAt(e - 1) === CR) e--;
    if (e === i) return nl + 1; // the blank line
    const kind = addField(fields, text, i, e);
    if (kind !== BodyField.None) noted.push((fields.length - 1) * 8 + kind);
    i = nl + 1;
  }
  return len;
}

/** One field line, text[start, end): `name: value`, or an obs-fold continuing the previous
 * one. Says whether the field added is one that bears on the body. */
export function addField(fields: HeaderField[], text: string, start: number, end: number): BodyField {
  const first = text.charCodeAt(start);
  let vs: number;
  if (first === SP || first === HTAB) {
    // obs-fold (RFC 9112 §5.2): joined to the previous value with one space.
    const prev = fields[fields.length - 1];
    if (!prev) return BodyField.None;
    vs = start;
    while (vs < end && (text.charCodeAt(vs) === SP || text.charCodeAt(vs) === HTAB)) vs++;
    let ve = end;
    while (ve > vs && (text.charCodeAt(ve - 1) === SP || text.charCodeAt(ve - 1) === HTAB)) ve--;
    if (ve > vs) prev.value = prev.value === "" ? text.slice(vs, ve) : `${prev.value} ${text.slice(vs, ve)}`;
    return BodyField.None;
  }
  const colon = text.indexOf(":", start);
  if (colon <= start || colon >= end) return BodyField.None; // not a field line: ignored, as lenient readers do
  vs = colon + 1;
  while (vs < end && (text.charCodeAt(vs) === SP || text.charCodeAt(vs) === HTAB)) vs++;
  let ve = end;
  while (ve > vs && (text.charCodeAt(ve - 1) === SP || text.charCodeAt(ve - 1) === HTAB)) ve--;
  fields.push({ name: text.slice(start, colon), value: text.slice(vs, ve) });
  // Most fields are none of these: the name's length (12, 14, 16, 17) says so at once.
  switch (colon - start) {
    case 12:
      return textIs(text, start, "content-type") ? BodyField.ContentType : BodyField.None;
    case 14:
      return textIs(text, start, "content-length") ? BodyField.ContentLength : BodyField.None;
    case 16:
      return textIs(text, start, "content-encoding") ? BodyField.ContentEncoding : BodyField.None;
    case 17:
      return textIs(text, start, "transfer-encoding") ? BodyField.TransferEncoding : BodyField.None;
  }
  return BodyField.None;
}
