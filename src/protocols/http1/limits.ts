// Every bound on what the HTTP/1 parser reads as one unit or holds, in one place. A stream
// can be anything (garbage, a stream joined mid-body, a hostile peer): past these bounds a
// unit is not what it seemed, so it is garbage or bad framing, never a reason to buffer more.

/** Longest head (start line, headers, blank line) read; a longer one is garbage. Also bounds trailers. */
export const MAX_HEAD = 64 * 1024;
/** Longest start line, line end included. */
export const MAX_START_LINE = 8 * 1024;
/** Longest chunk-size line (extensions included). */
export const MAX_CHUNK_LINE = 4 * 1024;
/** Longest method token at a clean message boundary. */
export const MAX_METHOD = 32;
/** Longest unknown method (capitals) accepted at the start of a line when resynchronising. */
export const MAX_LINE_METHOD = 20;
/** More chunk-size digits than this is a size beyond Number.MAX_SAFE_INTEGER. */
export const MAX_CHUNK_DIGITS = 13;
/** Body pieces kept as views before they are copied into one growing buffer instead. */
export const MAX_PARTS = 32;
/** Body bytes kept per message when the caller does not say. */
export const DEFAULT_MAX_BODY = 1024 * 1024;
