// HTTP/2 frames (RFC 9113 §4, §6) from one direction of a connection, pushed in pieces as
// captured: the client preface is checked and skipped, each frame is handed over whole,
// and padding and priority fields are taken off HEADERS, DATA and PUSH_PROMISE. When the
// stream is joined in the middle, or bytes were lost, the reader looks for a frame
// boundary: a plausible frame header followed by another one (or by the end of what was
// captured). Plain data out: no tapwire imports.

export const FrameType = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

export const Flag = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4, PADDED: 0x8, PRIORITY: 0x20 } as const;

import { H2_PREFACE, H2_PREFACE_BYTES } from "../sniff.ts";

/** The client preface (src/protocols/sniff.ts states it). */
export const CLIENT_PREFACE = H2_PREFACE;
const PREFACE_BYTES = H2_PREFACE_BYTES;
const HEADER_SIZE = 9;
/** Frames larger than this are taken as a lost boundary when resynchronising (the protocol
 * allows 16 MiB only after SETTINGS_MAX_FRAME_SIZE says so; real peers stay far below). */
const PLAUSIBLE_MAX = 1 << 20;
/** The most bytes held while looking for a boundary. */
const SYNC_WINDOW = 1 << 20;

export interface Frame {
  type: number;
  flags: number;
  streamId: number;
  /** The payload without padding and priority fields. Valid only during the callback. */
  payload: Uint8Array;
  /** The frame's length on the wire, header included. */
  wireLength: number;
}

export interface FrameReaderOptions {
  /** The client's direction of a connection seen from its start: the preface comes first. */
  expectPreface: boolean;
  /** Joined mid-stream: look for a frame boundary before reading. */
  resync: boolean;
  onFrame(frame: Frame, tsNs: number): void;
  /** Bytes skipped while looking for a boundary, and why (a malformed frame, a gap). */
  onSkip?(bytes: number, why: string): void;
}

export interface FrameReader {
  push(bytes: Uint8Array, tsNs: number): void;
  /** `lost` bytes are missing here: the next frame boundary has to be found again. */
  gap(lost: number): void;
  /** Bytes held that did not make a whole frame (at the end: a truncated frame). */
  readonly pending: number;
  readonly framesRead: number;
}

export function createFrameReader(opts: FrameReaderOptions): FrameReader {
  let buf = new Uint8Array(0); // held bytes (a frame that spans pushes, or the sync window)
  let prefaceLeft = opts.expectPreface ? PREFACE_BYTES.length : 0;
  let syncing = opts.resync;
  let framesRead = 0;

  /** Reads every whole frame of `data` from `at`; returns where the first incomplete one starts. */
  function consume(data: Uint8Array, at: number, tsNs: number): number {
    const end = data.length;
    for (;;) {
      if (prefaceLeft > 0) {
        const n = Math.min(prefaceLeft, end - at);
        const from = PREFACE_BYTES.length - prefaceLeft;
        for (let i = 0; i < n; i++) {
          if (data[at + i] !== PREFACE_BYTES[from + i]) {
            // Not the preface after all: frames are looked for instead.
            prefaceLeft = 0;
            syncing = true;
            opts.onSkip?.(0, "no client preface");
            break;
          }
        }
        if (prefaceLeft > 0) {
          prefaceLeft -= n;
          at += n;
          if (prefaceLeft > 0) return at;
        }
      }
      if (syncing) {
        const found = findBoundary(data, at);
        if (found < 0) {
          // Keep what may still start a frame, within the window.
          const keep = Math.max(-found - 1, end - SYNC_WINDOW);
          if (keep > at) opts.onSkip?.(keep - at, "looking for a frame boundary");
          return keep;
        }
        if (found > at) opts.onSkip?.(found - at, "looking for a frame boundary");
        at = found;
        syncing = false;
      }
      if (end - at < HEADER_SIZE) return at;
      const length = (data[at]! << 16) | (data[at + 1]! << 8) | data[at + 2]!;
      if (end - at < HEADER_SIZE + length) return at;
      const type = data[at + 3]!;
      const flags = data[at + 4]!;
      const streamId = ((data[at + 5]! & 0x7f) << 24) | (data[at + 6]! << 16) | (data[at + 7]! << 8) | data[at + 8]!;
      let start = at + HEADER_SIZE;
      let stop = start + length;
      let malformed = false;
      if (type === FrameType.DATA || type === FrameType.HEADERS || type === FrameType.PUSH_PROMISE) {
        if (flags & Flag.PADDED) {
          const pad = length > 0 ? data[start]! : 256;
          start++;
          stop -= pad;
        }
        if (type === FrameType.HEADERS && flags & Flag.PRIORITY) start += 5;
        malformed = stop < start;
      }
      at += HEADER_SIZE + length;
      framesRead++;
      if (malformed) {
        opts.onSkip?.(HEADER_SIZE + length, `malformed ${frameTypeName(type)} frame on stream ${streamId}`);
        continue;
      }
      opts.onFrame({ type, flags, streamId, payload: data.subarray(start, stop), wireLength: HEADER_SIZE + length }, tsNs);
    }
  }

  return {
    push(bytes, tsNs) {
      if (!bytes.length) return;
      let data: Uint8Array;
      if (buf.length) {
        data = new Uint8Array(buf.length + bytes.length);
        data.set(buf);
        data.set(bytes, buf.length);
      } else data = bytes;
      const at = consume(data, 0, tsNs);
      // What is left is copied: the pushed bytes are only borrowed.
      buf = at < data.length ? data.slice(at) : new Uint8Array(0);
    },
    gap(lost) {
      if (lost <= 0) return;
      if (buf.length) opts.onSkip?.(buf.length, "cut by lost bytes");
      buf = new Uint8Array(0);
      prefaceLeft = 0;
      syncing = true;
    },
    get pending() {
      return buf.length;
    },
    get framesRead() {
      return framesRead;
    },
  };
}

/** Whether 9 bytes at `at` can be a frame header worth trusting while resynchronising. */
function plausibleHeader(d: Uint8Array, at: number): boolean {
  const length = (d[at]! << 16) | (d[at + 1]! << 8) | d[at + 2]!;
  const type = d[at + 3]!;
  const flags = d[at + 4]!;
  if (d[at + 5]! & 0x80 || length > PLAUSIBLE_MAX || type > FrameType.CONTINUATION) return false;
  const stream = ((d[at + 5]! & 0x7f) << 24) | (d[at + 6]! << 16) | (d[at + 7]! << 8) | d[at + 8]!;
  switch (type) {
    case FrameType.DATA:
      return stream !== 0 && (flags & ~(Flag.END_STREAM | Flag.PADDED)) === 0;
    case FrameType.HEADERS:
      return stream !== 0 && (flags & ~(Flag.END_STREAM | Flag.END_HEADERS | Flag.PADDED | Flag.PRIORITY)) === 0;
    case FrameType.PRIORITY:
      return stream !== 0 && length === 5;
    case FrameType.RST_STREAM:
      return stream !== 0 && length === 4;
    case FrameType.SETTINGS:
      return stream === 0 && length % 6 === 0 && (flags & ~Flag.ACK) === 0 && (!(flags & Flag.ACK) || length === 0);
    case FrameType.PUSH_PROMISE:
      return stream !== 0 && length >= 4;
    case FrameType.PING:
      return stream === 0 && length === 8 && (flags & ~Flag.ACK) === 0;
    case FrameType.GOAWAY:
      return stream === 0 && length >= 8;
    case FrameType.WINDOW_UPDATE:
      return length === 4 && flags === 0;
    default:
      return stream !== 0 && (flags & ~Flag.END_HEADERS) === 0;
  }
}

/**
 * The first offset from `at` where a frame boundary can be trusted: a plausible header
 * followed by another, or ending exactly where the capture ends (peers write whole frames).
 * Otherwise -(1 + where to wait from): the first candidate whose frame runs past the end,
 * or the last bytes that may still start a header.
 */
function findBoundary(d: Uint8Array, at: number): number {
  let waitFrom = -1;
  for (let p = at; p + HEADER_SIZE <= d.length; p++) {
    if (!plausibleHeader(d, p)) continue;
    const next = p + HEADER_SIZE + ((d[p]! << 16) | (d[p + 1]! << 8) | d[p + 2]!);
    if (next === d.length) return p;
    if (next + HEADER_SIZE <= d.length && plausibleHeader(d, next)) return p;
    if (next > d.length && waitFrom < 0) waitFrom = p;
  }
  return -(1 + (waitFrom >= 0 ? waitFrom : Math.max(at, d.length - HEADER_SIZE + 1)));
}

const NAMES = ["DATA", "HEADERS", "PRIORITY", "RST_STREAM", "SETTINGS", "PUSH_PROMISE", "PING", "GOAWAY", "WINDOW_UPDATE", "CONTINUATION"];

export function frameTypeName(type: number): string {
  return NAMES[type] ?? `type 0x${type.toString(16)}`;
}

/** RFC 9113 §7 error codes. */
const ERRORS = [
  "NO_ERROR",
  "PROTOCOL_ERROR",
  "INTERNAL_ERROR",
  "FLOW_CONTROL_ERROR",
  "SETTINGS_TIMEOUT",
  "STREAM_CLOSED",
  "FRAME_SIZE_ERROR",
  "REFUSED_STREAM",
  "CANCEL",
  "COMPRESSION_ERROR",
  "CONNECT_ERROR",
  "ENHANCE_YOUR_CALM",
  "INADEQUATE_SECURITY",
  "HTTP_1_1_REQUIRED",
];

export function errorCodeName(code: number): string {
  return ERRORS[code] ?? `0x${code.toString(16)}`;
}
