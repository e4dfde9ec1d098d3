// A BPF ring buffer in plain memory, laid out as the kernel lays it out and as
// src/bpf/ring-reader.ts maps it: a consumer page, a producer page, and the data area
// followed by the same area again (bytes written at position p appear at p & mask and at
// (p & mask) + dataSize, as the kernel's double mapping shows them).
// For the ring reader's tests and its benchmark; the "kernel" here is the test.
import type { RingMemory } from "../../../src/bpf/ring-reader.ts";

export const BUSY_BIT = 0x8000_0000;
export const DISCARD_BIT = 0x4000_0000;
export const HEADER_SIZE = 8;

/** The space a record of `len` bytes takes in the ring: header and padding to 8 bytes. */
export const recordSpace = (len: number) => (len + HEADER_SIZE + 7) & ~7;

export interface FakeRing {
  readonly memory: RingMemory;
  readonly dataSize: number;
  /** The producer position (the kernel's); settable to simulate what the kernel should never do. */
  producer: number;
  /** The consumer position as the reader left it; settable likewise. */
  consumer: number;
  /** Times the reader released the memory. */
  readonly releases: number;
  /**
   * Reserves and fills a record at the producer position, then moves the producer past it,
   * as bpf_ringbuf_reserve + submit do. `busy`: left reserved (not yet submitted);
   * `discard`: submitted as discarded. Returns the record's position.
   */
  write(payload: Uint8Array, how?: { busy?: boolean; discard?: boolean }): number;
  /** Overwrites the 32-bit length word of the record header at position `pos`. */
  setHeader(pos: number, word: number): void;
  /** Reads the length word of the header at `pos`. */
  header(pos: number): number;
  /** Writes bytes at ring position `pos` (both mappings). */
  put(pos: number, bytes: Uint8Array): void;
}

export function createFakeRing(dataSize: number): FakeRing {
  if (dataSize < 8 || (dataSize & (dataSize - 1)) !== 0) throw new Error(`ring size ${dataSize} is not a power of two`);
  const mask = dataSize - 1;
  const consumer = new ArrayBuffer(4096);
  const producer = new ArrayBuffer(4096);
  const data = new ArrayBuffer(2 * dataSize);
  const consumerPos = new BigUint64Array(consumer, 0, 1);
  const producerPos = new BigUint64Array(producer, 0, 1);
  const bytes = new Uint8Array(data);
  const dv = new DataView(data);
  let releases = 0;

  const put = (pos: number, src: Uint8Array) => {
    for (let i = 0; i < src.length; i++) {
      const at = (pos + i) & mask;
      bytes[at] = src[i]!;
      bytes[at + dataSize] = src[i]!;
    }
  };
  const putWord = (pos: number, word: number) => {
    const w = new Uint8Array(4);
    new DataView(w.buffer).setUint32(0, word >>> 0, true);
    put(pos, w);
  };

  const ring: FakeRing = {
    memory: {
      consumer,
      producer,
      data,
      dataSize,
      release() {
        releases++;
      },
    },
    dataSize,
    get producer() {
      return Number(producerPos[0]);
    },
    set producer(pos: number) {
      producerPos[0] = BigInt(pos);
    },
    get consumer() {
      return Number(consumerPos[0]);
    },
    set consumer(pos: number) {
      consumerPos[0] = BigInt(pos);
    },
    get releases() {
      return releases;
    },
    write(payload, how = {}) {
      const pos = ring.producer;
      const space = recordSpace(payload.length);
      if (pos + space - ring.consumer > dataSize) throw new Error("fake ring full");
      // Reserve: a busy header, then the producer moves; the payload is written; then commit.
      putWord(pos, payload.length | BUSY_BIT);
      putWord(pos + 4, 0);
      ring.producer = pos + space;
      put(pos + HEADER_SIZE, payload);
      if (!how.busy) putWord(pos, payload.length | (how.discard ? DISCARD_BIT : 0));
      return pos;
    },
    setHeader: putWord,
    header(pos) {
      return dv.getUint32(pos & mask, true);
    },
    put,
  };
  return ring;
}

/** A record whose payload is `n` bytes, each the low byte of `seed + i`: recognisable when read back. */
export function payload(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (seed + i) & 0xff;
  return out;
}
