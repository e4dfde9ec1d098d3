// The one loop that empties the ring buffer, for every command that reads it (capture,
// serve, keylog): a batch of records per turn of the event loop, so output and the API get
// their turns; again at once when the batch was full, soon when records came, a little later
// when the ring was empty. The ring is never left unread while tapwire runs.
import type { RecordHandler, RingReader } from "../bpf/ring-reader.ts";

/** Records handled per turn of the event loop before output gets its turn. */
const DRAIN_BATCH = 8192;
/** How long to sleep when the ring buffer was empty. */
const IDLE_POLL_MS = 5;

export interface DrainLoop {
  /** Stops the loop, then hands over everything left in the ring. */
  stop(): void;
}

export function startDrainLoop(ring: RingReader, handler: RecordHandler, afterBatch?: (records: number) => void): DrainLoop {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  const drainOnce = () => {
    const n = ring.drain(handler, DRAIN_BATCH);
    afterBatch?.(n);
    return n;
  };
  const loop = () => {
    timer = undefined;
    if (stopped) return;
    const n = drainOnce();
    timer = n >= DRAIN_BATCH ? (setImmediate(loop) as unknown as ReturnType<typeof setTimeout>) : setTimeout(loop, n > 0 ? 1 : IDLE_POLL_MS);
  };
  loop();
  return {
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      while (drainOnce() > 0);
    },
  };
}
