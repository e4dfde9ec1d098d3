// Content-Encoding undone at the flow level, for both HTTP versions (gzip, deflate, br): a
// body as the flow shows it, decoded as far as it was seen and within the body limit; the
// size stays the size as transferred. A body that does not decode is shown as sent.
import { decodeContent } from "./content-decoding.ts";
import type { FieldLike, Body } from "./messages.ts";

/** Every Content-Encoding field's value, in order ("gzip, br"). */
export function contentCoding(fields: readonly FieldLike[]): string {
  const codings: string[] = [];
  for (const f of fields) if (f.name.length === 16 && f.name.toLowerCase() === "content-encoding") codings.push(f.value);
  return codings.join(", ");
}

/** `raw` (the kept bytes of a body of `size` bytes; `whole` when nothing was cut or lost). */
export function decodedBody(raw: Uint8Array, size: number, whole: boolean, coding: string, maxBody: number): Body {
  if (!coding || !raw.length) return { body: raw, size, truncated: !whole, decodedEncoding: "" };
  const d = decodeContent(coding, raw, maxBody, whole);
  return { body: d.body, size, truncated: !whole || d.capped, decodedEncoding: d.encoding };
}
