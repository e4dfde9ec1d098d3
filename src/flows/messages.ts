// The parts of a Flow both HTTP versions build the same way: header lists, the request and
// the response, and what is missing. Plain message literals with every field set (what
// create() would make): create() costs more per flow than the parsing did.
import type { FlowMessage, Header, Missing, Request, Response } from "../gen/tapwire/v1/flow_pb.ts";

/** A body or payload of no bytes, shared (a zero-length array cannot be written to). */
export const EMPTY_BYTES = new Uint8Array(0);

/** Flow.messages of every flow that has none: one shared empty list, never written to. */
export const NO_MESSAGES: FlowMessage[] = Object.freeze([]) as unknown as FlowMessage[];

/** A header field as a parser gives it; `unknown` when HPACK state sent before tapwire
 * joined was needed to read its name, its value or both. */
export interface FieldLike {
  name: string;
  value: string;
  unknown?: "name" | "value" | "both";
}

export function toHeaders(fields: readonly FieldLike[]): Header[] {
  const out: Header[] = new Array(fields.length);
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i]!;
    const u = f.unknown;
    out[i] = { $typeName: "tapwire.v1.Header", name: f.name, value: f.value, nameUnknown: u === "name" || u === "both", valueUnknown: u === "value" || u === "both" };
  }
  return out;
}

/** The value of the first field named `lowerName` (compared without case), or "". */
export function fieldValue(fields: readonly FieldLike[], lowerName: string): string {
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i]!;
    if (f.name.length === lowerName.length && sameLetters(f.name, lowerName)) return f.value;
  }
  return "";
}

/** `name` equals `lower` (lowercase ASCII) but for the case of its letters: no string made. */
function sameLetters(name: string, lower: string): boolean {
  for (let i = 0; i < lower.length; i++) {
    const c = name.charCodeAt(i);
    if ((c >= 0x41 && c <= 0x5a ? c | 0x20 : c) !== lower.charCodeAt(i)) return false;
  }
  return true;
}

export interface Body {
  body: Uint8Array;
  /** The size as transferred. */
  size: number;
  truncated: boolean;
  /** The content codings undone ("gzip"), or "". */
  decodedEncoding: string;
}

export function requestMessage(r: { method: string; path: string; authority: string; version: string; headers: readonly FieldLike[]; trailers: readonly FieldLike[] }, b: Body): Request {
  return {
    $typeName: "tapwire.v1.Request",
    method: r.method,
    path: r.path,
    authority: r.authority,
    version: r.version,
    headers: toHeaders(r.headers),
    body: b.body,
    bodySize: BigInt(b.size),
    bodyTruncated: b.truncated,
    trailers: toHeaders(r.trailers),
    bodyDecodedEncoding: b.decodedEncoding,
  };
}

export function responseMessage(
  r: { status: number; reason: string; version: string; headers: readonly FieldLike[]; trailers: readonly FieldLike[]; informational: number[] },
  b: Body,
): Response {
  return {
    $typeName: "tapwire.v1.Response",
    status: r.status,
    reason: r.reason,
    version: r.version,
    headers: toHeaders(r.headers),
    body: b.body,
    bodySize: BigInt(b.size),
    bodyTruncated: b.truncated,
    trailers: toHeaders(r.trailers),
    bodyDecodedEncoding: b.decodedEncoding,
    informationalStatuses: r.informational,
  };
}

export interface MissingParts {
  lostBytes: number;
  noResponse: boolean;
  joinedMidStream: boolean;
  requestIncomplete: boolean;
  responseIncomplete: boolean;
  skippedBytes: number;
  unseenBodyBytes: number;
  /** What happened, in words, most important first. */
  reasons: string[];
}

/** The Missing of a flow the caller found something missing in. */
export function missingMessage(m: MissingParts): Missing {
  return {
    $typeName: "tapwire.v1.Missing",
    lostBytes: BigInt(m.lostBytes),
    noResponse: m.noResponse,
    joinedMidStream: m.joinedMidStream,
    requestIncomplete: m.requestIncomplete,
    responseIncomplete: m.responseIncomplete,
    skippedBytes: BigInt(m.skippedBytes),
    unseenBodyBytes: BigInt(m.unseenBodyBytes),
    reason: m.reasons.join("; "),
  };
}
