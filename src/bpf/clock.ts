// Kernel timestamps (bpf_ktime_get_ns: CLOCK_MONOTONIC) to wall-clock time.
import { ptr } from "bun:ffi";
import { libc } from "./libbpf.ts";

const CLOCK_REALTIME = 0;
const CLOCK_MONOTONIC = 1;

function nowNs(clock: number): number {
  const ts = new BigInt64Array(2);
  libc().clock_gettime(clock, ptr(ts));
  return Number(ts[0]) * 1e9 + Number(ts[1]);
}

/** Add to a CLOCK_MONOTONIC nanosecond time to get nanoseconds since the Unix epoch. */
export function monotonicToWallOffsetNs(): number {
  // Read realtime on both sides of monotonic and take the middle, to halve the error.
  const a = nowNs(CLOCK_REALTIME);
  const m = nowNs(CLOCK_MONOTONIC);
  const b = nowNs(CLOCK_REALTIME);
  return (a + b) / 2 - m;
}
