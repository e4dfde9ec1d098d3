// Stopping on SIGINT or SIGTERM, whatever tapwire is doing. A signal that comes before a
// listener is registered either kills tapwire uncleanly (the default action) or, when a
// non-interactive shell started tapwire in the background (SIGINT then starts ignored), is
// lost. tapwire used to register its listener only after printing `ready`, and after a clean
// stop that could wait on workers without a bound. So the listeners are the first thing the
// executable installs (catchSignals, from main.ts). Until a command claims the signal
// (stopSignal), a signal ends tapwire at once: nothing is attached yet to clean up. Once
// claimed, the first signal starts the command's clean stop (during start-up: as soon as it
// is up); should that not finish within its grace time, tapwire exits anyway and says so
// (the kernel detaches whatever was left); a second signal ends it at once.
const DEFAULT_GRACE_MS = 1800;

export interface StopSignal {
  /** Resolves on the first SIGINT or SIGTERM. */
  readonly signalled: Promise<void>;
}

let claimed: { resolve(): void; graceMs: number; signal: StopSignal } | undefined;
let received = 0;

/** Listens for SIGINT and SIGTERM from now on (once, at start). */
export function catchSignals(): void {
  const onSignal = (name: string) => {
    if (!claimed || ++received > 1) process.exit(130);
    claimed.resolve();
    const grace = claimed.graceMs;
    setTimeout(() => {
      process.stderr.write(`tapwire: stopping after ${name} took longer than ${grace} ms: exiting without finishing\n`);
      process.exit(1);
    }, grace).unref();
  };
  process.on("SIGINT", () => onSignal("SIGINT"));
  process.on("SIGTERM", () => onSignal("SIGTERM"));
}

/** The command stops cleanly on the first signal: it awaits `signalled`, then stops. */
export function stopSignal(graceMs = DEFAULT_GRACE_MS): StopSignal {
  if (claimed) return claimed.signal;
  let resolve!: () => void;
  const signal = { signalled: new Promise<void>((r) => (resolve = r)) };
  claimed = { resolve, graceMs, signal };
  return signal;
}
