// Stopping on SIGINT or SIGTERM, whatever tapwire is doing. The handlers are in place from
// the moment a command starts, so a signal during start-up is not lost (the command stops as
// soon as it is up). The first signal starts a clean stop; should that not finish within its
// grace time, tapwire exits anyway and says so (the kernel detaches whatever was left); a
// second signal ends it at once.
const DEFAULT_GRACE_MS = 1800;

export interface StopSignal {
  /** Resolves on the first SIGINT or SIGTERM. */
  readonly signalled: Promise<void>;
}

let installed: StopSignal | undefined;

export function stopSignal(graceMs = DEFAULT_GRACE_MS): StopSignal {
  if (installed) return installed;
  let resolve!: () => void;
  const signalled = new Promise<void>((r) => (resolve = r));
  let count = 0;
  const onSignal = (name: string) => {
    if (++count > 1) process.exit(130); // asked twice: at once
    resolve();
    setTimeout(() => {
      process.stderr.write(`tapwire: stopping after ${name} took longer than ${graceMs} ms: exiting without finishing\n`);
      process.exit(1);
    }, graceMs).unref();
  };
  process.on("SIGINT", () => onSignal("SIGINT"));
  process.on("SIGTERM", () => onSignal("SIGTERM"));
  installed = { signalled };
  return installed;
}
