// How values read in the page: times, sizes, durations, endpoints.
import type { Timestamp } from "@bufbuild/protobuf/wkt";

/** Milliseconds since the epoch; undefined for an absent timestamp. */
export function millis(t: Timestamp | undefined): number | undefined {
  return t ? Number(t.seconds) * 1000 + t.nanos / 1e6 : undefined;
}

const pad = (n: number, w = 2) => String(n).padStart(w, "0");

/** Local wall-clock time with milliseconds: 12:00:01.234. */
export function clock(ms: number): string {
  const d = new Date(ms);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

export function size(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

export function duration(ms: number | undefined): string {
  if (ms === undefined) return "";
  if (ms < 1) return `${Math.round(ms * 1000)} µs`;
  if (ms < 1000) return `${ms.toFixed(ms < 10 ? 2 : 0)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}

export function endpoint(e: { ip: string; port: number } | undefined): string {
  if (!e) return "?";
  return e.ip.includes(":") ? `[${e.ip}]:${e.port}` : `${e.ip}:${e.port}`;
}
