// A reader of a BPF ring buffer that maps it into this process and walks its records in
// place: no callback per record through FFI, no allocation per record. Records handed to
// `drain`'s handler are borrowed: valid only until the handler returns, so the handler copies
// what it keeps (decodeEvent copies data payloads).
//
// Layout (kernel/bpf/ringbuf.c): page 0 holds the consumer position (we write it), page 1
// the producer position, then the data area, mapped twice back to back so a record that
// wraps around the end is still contiguous. Each record: u32 length (bit 31 busy, bit 30
// discarded), u32 page offset, then the sample, padded to 8 bytes.
//
// The producer page and the data area are mapped read-only (the kernel refuses anything
// else), and optimised JavaScriptCore code implements Atomics.load as `lock cmpxchg`, a
// write: so those pages are read with plain loads, and an Atomics.load of the writable
// consumer page after each header read is the barrier that keeps the payload reads after
// the header read (x86 does not reorder loads with loads; the barrier stops the compiler).
//
// A record header is not trusted: a record must end at or before the producer position, and
// the producer is never more than the data area ahead of the consumer. A header that breaks
// this (memory corrupted, a kernel bug) is counted, and the reader starts again at the
// producer position: what lies between is lost, nothing is read outside what the kernel
// wrote, and no length can send the walk off the mapping or round in circles.
import { toArrayBuffer, type Pointer } from "bun:ffi";
import { libc, errno, strerror, SetupError } from "./libbpf.ts";

const PROT_READ = 1;
const PROT_WRITE = 2;
const MAP_SHARED = 1;
const BUSY_BIT = 0x8000_0000;
const DISCARD_BIT = 0x4000_0000;
const HEADER_SIZE = 8;

export type RecordHandler = (bytes: Uint8Array, view: DataView, offset: number, length: number) => void;

export interface RingStats {
  /** Record headers that did not fit between the consumer and the producer (or positions
   * that were not a ring apart): each time, the reader skipped to the producer position. */
  badRecords: number;
  /** Bytes skipped over by those resynchronisations: records lost with them. */
  skippedBytes: number;
}

export interface RingReader {
  /** Hand every record available now (at most `budget`) to `handler`, then free their space. Returns how many. */
  drain(handler: RecordHandler, budget?: number): number;
  /** Bytes written by the kernel and not yet consumed. */
  pending(): number;
  readonly stats: RingStats;
  close(): void;
}

/**
 * The memory a ring reader walks: the kernel's pages mapped into this process
 * (createRingReader), or plain buffers laid out the same way (tests, benchmarks).
 */
export interface RingMemory {
  /** The consumer page, at least 16 bytes: the consumer position (u64) at 0, written by the reader. */
  consumer: ArrayBuffer;
  /** The producer page, at least 8 bytes: the producer position (u64) at 0. */
  producer: ArrayBuffer;
  /** The data area followed by the same area again: 2 × dataSize bytes. */
  data: ArrayBuffer;
  /** Size of the data area: a power of two. */
  dataSize: number;
  /** Frees the memory; called once, by the reader's close. */
  release(): void;
}

export function createRingReader(mapFd: number, dataSize: number): RingReader {
  const c = libc();
  const page = c.getpagesize();
  const consumerPtr = c.mmap(null, page, PROT_READ | PROT_WRITE, MAP_SHARED, mapFd, 0);
  if (!consumerPtr || Number(consumerPtr) === -1) {
    throw new SetupError(`cannot map the ring buffer's consumer page: ${strerror(errno())}`);
  }
  const producerLen = page + 2 * dataSize;
  const producerPtr = c.mmap(null, producerLen, PROT_READ, MAP_SHARED, mapFd, page);
  if (!producerPtr || Number(producerPtr) === -1) {
    const err = errno();
    c.munmap(consumerPtr, page);
    throw new SetupError(`cannot map the ring buffer's data (${producerLen} bytes): ${strerror(err)}`);
  }
  return readRing({
    consumer: toArrayBuffer(consumerPtr as Pointer, 0, 16),
    producer: toArrayBuffer(producerPtr as Pointer, 0, 8),
    data: toArrayBuffer(producerPtr as Pointer, page, 2 * dataSize),
    dataSize,
    release() {
      c.munmap(producerPtr, producerLen);
      c.munmap(consumerPtr, page);
    },
  });
}

/** A reader over ring memory already in this process. */
export function readRing(memory: RingMemory): RingReader {
  const { dataSize } = memory;
  const consumerPos = new BigUint64Array(memory.consumer, 0, 1);
  // Unused words of the consumer page: Atomics on them are barriers without touching state.
  const barrierWord = new Int32Array(memory.consumer, 0, 4);
  const producerWords = new Uint32Array(memory.producer, 0, 2);
  // The producer position as two plain 32-bit loads: high word, low word, high word again,
  // so a carry between the halves is seen and the read retried.
  const producerPosition = () => {
    for (;;) {
      const hi = producerWords[1]!;
      const lo = producerWords[0]!;
      Atomics.load(barrierWord, 2);
      if (producerWords[1] === hi) return hi * 0x1_0000_0000 + lo;
    }
  };
  const dataBuffer = memory.data;
  const bytes = new Uint8Array(dataBuffer);
  const words = new Uint32Array(dataBuffer);
  const view = new DataView(dataBuffer);
  const mask = dataSize - 1;
  const stats: RingStats = { badRecords: 0, skippedBytes: 0 };
  let closed = false;

  return {
    drain(handler, budget = Infinity) {
      if (closed) return 0;
      // One BigInt per drain for our own position; positions fit in a double for centuries.
      let cons = Number(Atomics.load(consumerPos, 0));
      const prod = producerPosition();
      let handled = 0;
      try {
        // The kernel keeps the producer less than the data area ahead of the consumer: from
        // here on, every record that ends by the producer lies inside the double mapping.
        // Positions are multiples of 8, as every record's space is.
        if (prod < cons || prod - cons > dataSize || (cons & 7) !== 0) {
          stats.badRecords++;
          if (prod > cons) stats.skippedBytes += prod - cons;
          cons = prod;
        }
        while (cons < prod && handled < budget) {
          const at = cons & mask;
          const header = words[at >>> 2]!;
          if (header & BUSY_BIT) break; // being written: the kernel has not committed it
          Atomics.load(barrierWord, 2);
          const len = header & 0x3fff_ffff;
          const space = (len + HEADER_SIZE + 7) & ~7;
          if (space > prod - cons) {
            // Longer than what the producer wrote: not a record the kernel made.
            stats.badRecords++;
            stats.skippedBytes += prod - cons;
            cons = prod;
            break;
          }
          cons += space;
          if (header & DISCARD_BIT) continue;
          handled++;
          handler(bytes, view, at + HEADER_SIZE, len);
        }
      } finally {
        Atomics.store(consumerPos, 0, BigInt(cons));
      }
      return handled;
    },
    pending() {
      if (closed) return 0;
      return producerPosition() - Number(Atomics.load(consumerPos, 0));
    },
    stats,
    close() {
      if (closed) return;
      closed = true;
      memory.release();
    },
  };
}
