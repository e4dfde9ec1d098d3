// Waiting for a benchmark's server to accept connections on loopback.
import { connect } from "node:net";

/** Resolves once 127.0.0.1:`port` accepts a connection; throws after about `tries` × 50 ms. */
export async function waitForListener(port: number, what: string, tries = 200): Promise<void> {
  for (let i = 0; i < tries; i++) {
    const ok = await new Promise<boolean>((res) => {
      const s = connect({ host: "127.0.0.1", port });
      s.once("connect", () => (s.destroy(), res(true)));
      s.once("error", () => res(false));
    });
    if (ok) return;
    await Bun.sleep(50);
  }
  throw new Error(`${what} did not start: nothing listens on ${port}`);
}
