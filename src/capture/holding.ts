// Holding new programs' execs until their files are probed (src/probes/exec-hold.ts), wired
// to the TLS probes: the held file and the libssl it loads are looked at while the exec
// waits; what was left for later (a version string) is done once it has been let go.
import { linkTarget } from "../procs/proc.ts";
import type { LoadedProbes } from "../bpf/loader.ts";
import type { FileVerdict, TlsProbes } from "../probes/tls-probes.ts";
import { startExecHold, ExecHoldUnavailable, type ExecHold } from "../probes/exec-hold.ts";

/** Starts holding; undefined (said once) where fanotify permission events are not available. */
export async function startHolding(
  tls: TlsProbes,
  probes: LoadedProbes,
  opts: { timeoutMs: number; holderCommand: string[]; verbose: boolean },
  log: (line: string) => void,
): Promise<ExecHold | undefined> {
  /** The exec just answered, for its -v line. */
  let last: { pid: number; verdict: FileVerdict; before: number; ms: number } | undefined;
  try {
    const hold = await startExecHold({
      timeoutMs: opts.timeoutMs,
      holderCommand: opts.holderCommand,
      decide(pid, file) {
        const t0 = performance.now();
        const before = tls.libraries.length;
        const verdict = tls.onHeldExec(pid, file, probes.execLibraryPath(pid));
        last = { pid, verdict, before, ms: performance.now() - t0 };
        return verdict;
      },
      afterAnswer(file) {
        tls.finishHeld();
        if (!opts.verbose || !last) return;
        const probed = tls.libraries.slice(last.before).map((l) => l.version);
        const what = probed.length ? `probed ${probed.join(", ")}` : last.verdict === "known" ? "nothing to probe" : "to be looked at again on its next exec";
        log(`hold: ${linkTarget(file) ?? file} (pid ${last.pid}): ${what} in ${last.ms.toFixed(1)} ms`);
      },
      log,
    });
    // What the scan settled is never held.
    hold.ignore(tls.knownPaths());
    if (opts.verbose) {
      log(
        `tapwire: a program started from now on waits at its exec until its file is probed (at most ${opts.timeoutMs} ms; ${hold.filesystems} filesystems)` +
          (hold.skipped ? `; not on ${hold.skipped}` : ""),
      );
    }
    return hold;
  } catch (e) {
    if (!(e instanceof ExecHoldUnavailable)) throw e;
    log(`tapwire: programs started from now on are not held until probed (${e.message}): their first requests may be missed`);
    return undefined;
  }
}


/** "3 execs held (longest 12.0 ms)", with those let go at the deadline; "no exec held". */
export function holdSummary(hold: ExecHold): string {
  const s = hold.stats;
  if (!s.held) return "no exec held";
  return `${s.held} exec${s.held === 1 ? "" : "s"} held (longest ${s.maxMs.toFixed(1)} ms)` + (s.timedOut ? `, ${s.timedOut} let go unprobed at the deadline` : "");
}
