// The HTTP/1.x messages the parser emits. Plain data: no tapwire imports, no proto types;
// src/flows turns these into Flow messages.

export interface HeaderField {
  name: string; // exactly as sent (case kept)
  value: string; // exactly as sent, without surrounding whitespace
}

/** Why a message ended without being whole. Empty string: it is whole. */
export type Incompleteness =
  | "" // complete
  | "truncated" // the stream ended (end()) before the message did
  | "lost-bytes" // a gap() fell inside the message; what follows the gap was resynchronised
  | "upgraded" // never used for a message itself; see Http1Parser.upgraded
  /** The head was read but the body's framing is invalid: a Content-Length that is not a number or
   * disagrees with another, a request Transfer-Encoding whose last coding is not chunked, a malformed
   * chunk-size line or chunk end, trailers longer than the head limit. The message is emitted with
   * the body read so far (bodyTruncated), and the parser looks for the next start line. */
  | "bad-framing";

interface MessageCommon {
  version: string; // "HTTP/1.1" or "HTTP/1.0"
  headers: HeaderField[]; // in order, duplicates kept
  trailers: HeaderField[]; // chunked trailers, in order
  /** The body as sent, de-chunked: at most maxBody bytes (content decoding is done where flows are made). */
  body: Uint8Array;
  /** True size of the body after de-chunking, before content decoding (what Content-Length says), even when not all of it was kept. */
  bodySize: number;
  /** True when body holds less than the whole body: the maxBody limit, lost bytes, or a truncated stream. */
  bodyTruncated: boolean;
  /** The Content-Encoding fields' values, joined with ", " ("" when there are none). */
  contentEncoding: string;
  /** Timestamp passed with the chunk that held the message's first byte, and with its last byte. */
  startTs: number;
  endTs: number;
  incomplete: Incompleteness;
  /** Bytes lost inside this message (from gap()). A gap that runs past the message's end is counted whole here. */
  lostBytes: number;
  /** Bytes discarded before this message while looking for a message start (garbage or a stream joined mid-message). */
  skippedBefore: number;
}

export interface Http1Request extends MessageCommon {
  kind: "request";
  method: string;
  target: string; // request-target as sent: path with query, or absolute-form / authority-form
}

export interface Http1Response extends MessageCommon {
  kind: "response";
  status: number;
  reason: string;
  /** 1xx responses (100 Continue, 103 Early Hints) are emitted too, with informational = true; they do not
   * answer the request (the final response follows). 101 Switching Protocols is the final response:
   * informational = false, and the parser is upgraded after it. */
  informational: boolean;
}

export type Http1Message = Http1Request | Http1Response;

export interface Http1ParserOptions {
  /** Most body bytes kept per message (after decoding). Default 1 MiB. */
  maxBody?: number;
  /** Called for each message once it is whole, or when the stream ends or is cut inside it. */
  onMessage(message: Http1Message): void;
  /** Request parsers only: called when a request's head is parsed (before its body), so the
   * peer's response parser can learn the method with expectResponseTo(). `startTs`: when
   * the request began. */
  onRequestHead?(method: string, startTs: number): void;
  /** Response parsers: the method of the request the response begun at `startTs` answers,
   * when the caller knows it better than the order of requests (after lost bytes);
   * undefined: the next in order. */
  responseMethod?(startTs: number): string | undefined;
  /** After a hand-over (101, CONNECT): the bytes that now belong to the other protocol, in
   * order (borrowed: valid during the call), and the bytes lost among them. */
  onUpgradedBytes?(data: Uint8Array, ts: number): void;
  onUpgradedGap?(lost: number, ts: number): void;
  /** Response parsers: the head of a response whose body is Server-Sent Events (Content-Type
   * text/event-stream), before its body; true asks for the body's bytes as they are read, to
   * onBodyData. */
  onEventStream?(response: Http1Response): boolean;
  /** The body bytes of a response onEventStream asked for, de-chunked, in order (borrowed:
   * valid during the call). */
  onBodyData?(data: Uint8Array, ts: number): void;
}

/** What a gap did to the message framing. */
export const enum GapEffect {
  /** Nothing lost (an empty gap, or an upgraded stream's bytes). */
  None,
  /** Inside a body of known length: the message goes on; no other message was lost. */
  InsideBody,
  /** The message in progress ended at the gap (its lostBytes count the whole gap); whole
   * messages may have been lost after it. */
  CutMessage,
  /** Between messages: whole messages may have been lost; no message counts these bytes. */
  BetweenMessages,
}

export interface Http1Parser {
  /** Feed the next bytes of the stream, in order. The parser may keep views of `data`: the caller must not modify it afterwards. */
  push(data: Uint8Array, ts: number): void;
  /** `lost` bytes of the stream are missing at this point (events lost in the kernel). Says
   * whether whole messages may have been lost with them (see GapEffect). */
  gap(lost: number, ts: number): GapEffect;
  /** The stream ended: a close-delimited body completes; a partial message is emitted incomplete ("truncated"). */
  end(ts: number): void;
  /** Response parsers: the method of the next request in order (pipelining), so HEAD and CONNECT responses are read right. */
  expectResponseTo(method: string): void;
  /** Response parsers: the next `count` expected responses will not come (lost with bytes). */
  forgetExpected(count: number): void;
  /** Set once a 101 Switching Protocols or a successful CONNECT has handed the stream to another protocol;
   * later bytes are ignored by this parser and counted in upgradedBytes. */
  readonly upgraded: boolean;
  readonly upgradedBytes: number;
  /** Hand the stream over to another protocol from here on (the peer's parser saw 101 or a 2xx to CONNECT):
   * a message in progress is emitted, later bytes are ignored as with `upgraded`. */
  handOver(): void;
  /** Bytes discarded since the last message while looking for a message start (not yet attached to a message). */
  readonly pendingSkipped: number;
}
