// Server-Sent Events (the WHATWG HTML "event stream" format) read as the bytes arrive: lines
// end with CRLF, LF or CR; "data" lines join with LF, "event", "id" and "retry" set what the
// next event carries, lines starting with ":" are comments, and a blank line sends the event.
// An event's data is kept up to `maxData` bytes (the rest counted as cut): a stream that never
// sends a blank line costs that, not more. Plain data out.

export interface SseEvent {
  /** The "id" field of this event ("" when it had none; the stream's last id is not carried). */
  id: string;
  /** The "event" field ("" when it had none: a "message" event). */
  event: string;
  data: string;
  /** The "retry" field, when it was a number. */
  retry?: number;
  /** Its data was longer than the bound: what data holds is its beginning. */
  truncated: boolean;
}

export interface EventStreamReader {
  /** The events `bytes` completed, in order (`bytes` is only read during the call). */
  push(bytes: Uint8Array): SseEvent[];
}

const LF = 0x0a;
const CR = 0x0d;

export function createEventStreamReader(maxData: number): EventStreamReader {
  const decoder = new TextDecoder();
  /** The line in progress (bytes until its end arrives), bounded: a longer line is cut. */
  const lineCap = maxData + 16;
  let line = new Uint8Array(Math.min(lineCap, 256));
  let lineLen = 0;
  let lineCut = false;
  let afterCR = false;
  let first = true;
  let id = "";
  let event = "";
  let data: string[] = [];
  let dataBytes = 0;
  let truncated = false;
  let retry: number | undefined;
  let seen = false;

  const reset = () => {
    id = "";
    event = "";
    data = [];
    dataBytes = 0;
    truncated = false;
    retry = undefined;
    seen = false;
  };

  const endLine = (out: SseEvent[]) => {
    let text = decoder.decode(line.subarray(0, lineLen));
    lineLen = 0;
    // A buffer grown for one long line is not kept for the short ones after it.
    if (line.length > 4096) line = new Uint8Array(256);
    const cut = lineCut;
    lineCut = false;
    // A byte order mark at the very start is not part of the first line.
    if (first) {
      first = false;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    if (text === "") {
      // Dispatch: an event without data is not sent.
      if (seen && data.length) out.push({ id, event, data: data.join("\n"), retry, truncated });
      reset();
      return;
    }
    if (text.startsWith(":")) return;
    const colon = text.indexOf(":");
    const name = colon < 0 ? text : text.slice(0, colon);
    let value = colon < 0 ? "" : text.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    seen = true;
    switch (name) {
      case "data": {
        // Past the bound, lines are counted as cut, not kept (not even as empty lines).
        const room = maxData - dataBytes;
        if (room <= 0 || cut) truncated = true;
        if (room > 0) {
          const kept = value.length > room ? value.slice(0, room) : value;
          if (kept.length < value.length) truncated = true;
          data.push(kept);
          dataBytes += kept.length + 1;
        }
        break;
      }
      case "event":
        event = value;
        break;
      case "id":
        if (!value.includes("\0")) id = value;
        break;
      case "retry":
        if (/^\d+$/.test(value)) retry = Number(value);
        break;
      // Other fields are ignored, as browsers do.
    }
  };

  return {
    push(bytes) {
      const out: SseEvent[] = [];
      for (let i = 0; i < bytes.length; i++) {
        const b = bytes[i]!;
        if (afterCR) {
          afterCR = false;
          if (b === LF) continue; // the LF of a CRLF
        }
        if (b === CR || b === LF) {
          afterCR = b === CR;
          endLine(out);
          continue;
        }
        if (lineLen < lineCap) {
          if (lineLen === line.length) {
            const grown = new Uint8Array(Math.min(lineCap, line.length * 2));
            grown.set(line);
            line = grown;
          }
          line[lineLen++] = b;
        } else lineCut = true;
      }
      return out;
    },
  };
}
