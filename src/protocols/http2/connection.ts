// One HTTP/2 connection read as plain stream events: a frame reader and an HPACK decoder per
// direction, header blocks gathered from HEADERS/PUSH_PROMISE and CONTINUATION frames (at
// most maxHeaderBlock bytes: a longer run is a header error, never a buffer that grows),
// SETTINGS_HEADER_TABLE_SIZE followed, and the compression state started anew whenever it is
// lost (bytes lost, a block interrupted or undecodable). No flows here: src/flows stitches
// these events into them.
//
// Directions are 0 and 1 (the caller's: tapwire uses the kernel's egress and ingress).
import { createFrameReader, Flag, FrameType, type Frame, type FrameReader } from "./frames.ts";
import { createHpackDecoder, HpackError, type HeaderField, type HpackDecoder } from "./hpack.ts";

export type Dir = 0 | 1;

/** The table size both sides start with (RFC 9113 §6.5.2). */
const DEFAULT_TABLE_SIZE = 4096;
/** Header block bytes gathered at most, by default (compressed, across CONTINUATION frames). */
export const DEFAULT_MAX_HEADER_BLOCK = 256 * 1024;

export interface Http2Events {
  /** A header block of a stream, decoded; `error` says why it could not be (fields empty). */
  headers(dir: Dir, streamId: number, fields: HeaderField[], endStream: boolean, error: string, ts: number): void;
  /** A PUSH_PROMISE on `streamId`: the request of the pushed stream `promised`. */
  promise(dir: Dir, streamId: number, promised: number, fields: HeaderField[], error: string, ts: number): void;
  /** DATA of a stream; `payload` is borrowed (valid during the call only). */
  data(dir: Dir, streamId: number, payload: Uint8Array, endStream: boolean, ts: number): void;
  /** RST_STREAM. */
  reset(dir: Dir, streamId: number, code: number, ts: number): void;
  /** GOAWAY: streams above `lastStreamId` that the receiver opened were not processed. */
  goaway(dir: Dir, lastStreamId: number, code: number, ts: number): void;
  /** A header block of a stream that could not be finished (interrupted, too long, lost). */
  headerError(dir: Dir, streamId: number, why: string, ts: number): void;
}

export interface Http2Connection {
  push(dir: Dir, bytes: Uint8Array, ts: number): void;
  /** `lost` bytes of a direction were not seen. */
  gap(dir: Dir, lost: number): void;
  /** Frames read in a direction so far. */
  framesRead(dir: Dir): number;
}

export interface Http2ConnectionOptions {
  /** Joined in the middle: read from the next frame boundary, unknown table entries marked. */
  joined: boolean;
  maxHeaderBlock?: number;
  events: Http2Events;
}

/** A header block being gathered. */
interface PendingBlock {
  streamId: number;
  endStream: boolean;
  /** PUSH_PROMISE: the stream it promises. */
  promised: number;
  fragments: Uint8Array[];
  bytes: number;
}

interface DirectionState {
  reader: FrameReader;
  hpack: HpackDecoder;
  block?: PendingBlock;
}

export function createHttp2Connection(opts: Http2ConnectionOptions): Http2Connection {
  const events = opts.events;
  const maxBlock = opts.maxHeaderBlock ?? DEFAULT_MAX_HEADER_BLOCK;
  const freshDecoder = (joined: boolean) => createHpackDecoder({ maxTableSize: DEFAULT_TABLE_SIZE, joinedMidStream: joined });

  const dirs: DirectionState[] = ([0, 1] as Dir[]).map((dir) => {
    const state: DirectionState = {
      hpack: freshDecoder(opts.joined),
      reader: createFrameReader({
        // The client's direction starts with the preface; which one that is may not be known
        // yet, so both accept it (a server never sends those bytes).
        expectPreface: !opts.joined,
        resync: opts.joined,
        onFrame: (f, ts) => onFrame(dir, state, f, ts),
      }),
    };
    return state;
  });

  function onFrame(dir: Dir, state: DirectionState, f: Frame, ts: number) {
    if (state.block && f.type !== FrameType.CONTINUATION) {
      // A header block cut off by another frame: the compression state is lost with it.
      failBlock(dir, state, "header block interrupted", ts);
    }
    switch (f.type) {
      case FrameType.HEADERS:
      case FrameType.PUSH_PROMISE: {
        let fragment = f.payload;
        let promised = 0;
        if (f.type === FrameType.PUSH_PROMISE) {
          if (fragment.length < 4) return;
          promised = ((fragment[0]! & 0x7f) << 24) | (fragment[1]! << 16) | (fragment[2]! << 8) | fragment[3]!;
          fragment = fragment.subarray(4);
        }
        state.block = { streamId: f.streamId, endStream: f.type === FrameType.HEADERS && (f.flags & Flag.END_STREAM) !== 0, promised, fragments: [], bytes: 0 };
        addFragment(dir, state, fragment, f.flags, ts);
        return;
      }
      case FrameType.CONTINUATION:
        if (!state.block || state.block.streamId !== f.streamId) return; // its HEADERS was not seen
        addFragment(dir, state, f.payload, f.flags, ts);
        return;
      case FrameType.DATA:
        if (f.streamId !== 0) events.data(dir, f.streamId, f.payload, (f.flags & Flag.END_STREAM) !== 0, ts);
        return;
      case FrameType.RST_STREAM:
        if (f.payload.length >= 4 && f.streamId !== 0) events.reset(dir, f.streamId, readU32(f.payload, 0), ts);
        return;
      case FrameType.GOAWAY:
        if (f.payload.length >= 8) events.goaway(dir, readU32(f.payload, 0) & 0x7fffffff, readU32(f.payload, 4), ts);
        return;
      case FrameType.SETTINGS:
        if (f.flags & Flag.ACK) return;
        for (let at = 0; at + 6 <= f.payload.length; at += 6) {
          const id = (f.payload[at]! << 8) | f.payload[at + 1]!;
          // SETTINGS_HEADER_TABLE_SIZE bounds the table of the header blocks this side
          // receives. An observer only widens the bound: the two directions are read
          // independently, so the order in which a change takes effect is not known.
          if (id === 0x1) {
            const value = readU32(f.payload, at + 2);
            if (value > DEFAULT_TABLE_SIZE) dirs[dir === 0 ? 1 : 0]!.hpack.setMaxTableSize(value);
          }
        }
        return;
      default:
        return; // PRIORITY, PING, WINDOW_UPDATE and unknown types carry nothing for a stream
    }
  }

  function addFragment(dir: Dir, state: DirectionState, fragment: Uint8Array, flags: number, ts: number) {
    const block = state.block!;
    if (block.bytes + fragment.length > maxBlock) {
      failBlock(dir, state, `header block longer than ${maxBlock} bytes`, ts);
      return;
    }
    // Copied into a Buffer: the HPACK decoder reads Buffers in place, while asking a plain
    // Uint8Array for its ArrayBuffer would make one for every block.
    block.fragments.push(Buffer.from(fragment));
    block.bytes += fragment.length;
    if (flags & Flag.END_HEADERS) finishBlock(dir, state, ts);
  }

  function finishBlock(dir: Dir, state: DirectionState, ts: number) {
    const block = state.block!;
    state.block = undefined;
    const bytes = block.fragments.length === 1 ? block.fragments[0]! : concat(block.fragments, block.bytes);
    let fields: HeaderField[];
    let error = "";
    try {
      fields = state.hpack.decode(bytes);
    } catch (e) {
      if (!(e instanceof HpackError)) throw e;
      error = `header block not decodable: ${e.message}`;
      fields = [];
      // The compression state is lost: what follows is read as if joined anew.
      state.hpack = freshDecoder(true);
    }
    if (block.promised) events.promise(dir, block.streamId, block.promised, fields, error, ts);
    else events.headers(dir, block.streamId, fields, block.endStream, error, ts);
  }

  function failBlock(dir: Dir, state: DirectionState, why: string, ts: number) {
    const block = state.block!;
    state.block = undefined;
    state.hpack = freshDecoder(true);
    events.headerError(dir, block.streamId, why, ts);
  }

  let lastTs = 0;
  return {
    push(dir, bytes, ts) {
      lastTs = ts;
      dirs[dir]!.reader.push(bytes, ts);
    },
    gap(dir, lost) {
      const state = dirs[dir]!;
      state.reader.gap(lost);
      if (state.block) failBlock(dir, state, `${lost} bytes lost`, lastTs);
      // A lost header block would desynchronise the table: read on as if joined anew.
      state.hpack = freshDecoder(true);
    },
    framesRead: (dir) => dirs[dir]!.reader.framesRead,
  };
}

function readU32(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
}

function concat(parts: Uint8Array[], total: number): Uint8Array {
  const out = Buffer.allocUnsafe(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
