// The body a finished message carries: the bytes captured, or, when the head named a
// Content-Encoding, those bytes decoded. This is the one place the parser applies content
// decoding, kept apart from framing and capture so that it can move, as a whole, to where
// flows are built.
import { decodeContent } from "./content-decoding.ts";
import type { Http1Message } from "./types.ts";

/**
 * Sets m.body, m.bodyTruncated and, when decoded, m.decodedEncoding and m.decodeError from the
 * captured bytes `raw`. `truncated`: raw is less than the whole body as sent (then it decodes
 * as far as it goes). The decoded body is kept to maxBody bytes too.
 */
export function setBody(m: Http1Message, raw: Uint8Array, truncated: boolean, contentEncoding: string, maxBody: number): void {
  if (contentEncoding !== "" && raw.length > 0) {
    const d = decodeContent(contentEncoding, raw, maxBody, !truncated);
    m.body = d.body;
    m.decodedEncoding = d.encoding;
    m.decodeError = d.error;
    truncated ||= d.capped;
  } else {
    m.body = raw;
  }
  m.bodyTruncated = truncated;
}
