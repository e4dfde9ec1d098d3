// The body bytes kept for the message in progress: at most maxBody of them, as views of the
// pushed chunks where possible (no copy), joined once when the message ends. Many small
// pieces (tiny chunks, tiny pushes) go into one growing copy instead, so that a body never
// costs a long list of views; bytes read from the reused pending buffer are always copied.
// Only the kept prefix is referenced: chunks pushed past maxBody are not held.
import { EMPTY } from "./bytes.ts";
import { MAX_PARTS } from "./limits.ts";

/** Bytes below which a copy is cheaper than a view (see add). */
export const SMALL_PIECE = 2048;

export class BodyCapture {
  private readonly parts: Uint8Array[] = [];
  /** Once many pieces came: one growing copy of the kept bytes, acc[0, kept). */
  private acc: Uint8Array | null = null;
  private kept = 0;
  /** False once bytes were lost inside the body: what is kept is what came before the gap. */
  private keeping = true;

  constructor(private readonly maxBody: number) {}

  /** Bytes were lost inside the body: nothing after them is kept, so the body stays a true prefix. */
  stopKeeping(): void {
    this.keeping = false;
  }

  /** Keeps what fits of buf[from, to); `copy` when buf is reused after this call. */
  add(buf: Uint8Array, from: number, to: number, copy: boolean): void {
    if (!this.keeping) return;
    const n = to - from;
    const room = this.maxBody - this.kept;
    if (room <= 0 || n === 0) return;
    const take = n < room ? n : room;
    if (this.acc === null && this.parts.length < MAX_PARTS) {
      // A view of the pushed bytes, unless they are about to be reused. A small piece is
      // copied anyway: the engine's first view into a freshly copied record costs more
      // than copying a few hundred bytes (bench/replay.ts: ~150 ns against ~30).
      this.parts.push(copy || take <= SMALL_PIECE ? buf.slice(from, from + take) : buf.subarray(from, from + take));
      this.kept += take;
      return;
    }
    // Many small pieces (tiny chunks, tiny pushes): one growing copy rather than a long list.
    const need = this.kept + take;
    if (this.acc === null || need > this.acc.length) {
      const grown = new Uint8Array(Math.min(this.maxBody, Math.max(need, 2 * this.kept, 4096)));
      if (this.acc !== null) grown.set(this.acc.subarray(0, this.kept));
      else {
        let at = 0;
        for (const p of this.parts) {
          grown.set(p, at);
          at += p.length;
        }
        this.parts.length = 0;
      }
      this.acc = grown;
    }
    this.acc.set(buf.subarray(from, from + take), this.kept);
    this.kept = need;
  }

  /** The kept bytes as one array (a single piece as it is), and a fresh start for the next message. */
  take(): Uint8Array {
    let raw: Uint8Array;
    if (this.acc !== null) {
      // A copy when most of the buffer would be slack, so that it is not held for nothing.
      raw = this.acc.length > 2 * this.kept ? this.acc.slice(0, this.kept) : this.acc.subarray(0, this.kept);
      this.acc = null;
    } else if (this.parts.length === 0) {
      raw = EMPTY;
    } else if (this.parts.length === 1) {
      raw = this.parts[0];
    } else {
      raw = new Uint8Array(this.kept);
      let at = 0;
      for (const p of this.parts) {
        raw.set(p, at);
        at += p.length;
      }
    }
    this.parts.length = 0;
    this.kept = 0;
    this.keeping = true;
    return raw;
  }
}
