// Where the API listens, as far as safety goes: a loopback address is reachable from this
// host only (and, by any web page, through the browser: see request-guard.ts).
export function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}
