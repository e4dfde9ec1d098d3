// Keeps the page's flows in step with the agent: subscribe to live flow events, read the
// history a page at a time (newest first), then apply what arrived meanwhile and keep going.
// A lost agent is retried with backoff and the list reloaded; a refused token or a bad
// filter stops it until the user acts.
import { Code, ConnectError } from "@connectrpc/connect";
import type { Flow } from "../../src/gen/tapwire/v1/flow_pb.ts";
import type { WatchFlowsResponse } from "../../src/gen/tapwire/v1/service_pb.ts";
import type { Api } from "./api.ts";

export type FeedState =
  | { kind: "connecting" }
  | { kind: "loading"; loaded: number }
  | { kind: "live" }
  | { kind: "unreachable"; message: string; retryAt: number }
  | { kind: "unauthenticated"; message: string }
  | { kind: "bad-filter"; message: string };

export interface FeedSink {
  /** A new session begins: forget the flows shown. */
  reset(): void;
  /** A page of the history, newest first. */
  history(flows: Flow[]): void;
  /** Live events, in order. */
  live(events: WatchFlowsResponse[]): void;
  state(s: FeedState): void;
}

const PAGE = 1000;
const BACKOFF_MS = [500, 1000, 2000, 4000, 8000];

export interface Feed {
  stop(): void;
}

/** Runs until stopped; `maxHistory`: flows of the history to read at most. */
export function startFeed(api: Api, expression: string, maxHistory: number, sink: FeedSink): Feed {
  const stopped = new AbortController();
  void (async () => {
    for (let attempt = 0; !stopped.signal.aborted; ) {
      const session = new AbortController();
      const onStop = () => session.abort();
      stopped.signal.addEventListener("abort", onStop);
      let reachedLive = false;
      try {
        sink.state({ kind: "connecting" });
        await runSession(api, expression, maxHistory, sink, session.signal, () => {
          reachedLive = true;
          attempt = 0;
        });
        // The stream ended without an error: the agent went away (stopping, restarting).
        throw new ConnectError("the agent closed the stream", Code.Unavailable);
      } catch (e) {
        session.abort();
        if (stopped.signal.aborted) return;
        const err = ConnectError.from(e);
        if (err.code === Code.Unauthenticated) return sink.state({ kind: "unauthenticated", message: err.rawMessage });
        if (err.code === Code.InvalidArgument) return sink.state({ kind: "bad-filter", message: err.rawMessage });
        const wait = BACKOFF_MS[Math.min(attempt++, BACKOFF_MS.length - 1)]!;
        sink.state({ kind: "unreachable", message: reachedLive ? `connection lost: ${err.rawMessage}` : err.rawMessage, retryAt: Date.now() + wait });
        await sleep(wait, stopped.signal);
      } finally {
        stopped.signal.removeEventListener("abort", onStop);
      }
    }
  })();
  return { stop: () => stopped.abort() };
}

async function runSession(api: Api, expression: string, maxHistory: number, sink: FeedSink, signal: AbortSignal, live: () => void): Promise<void> {
  const filter = { expression };
  // Subscribed before the history is read, so no flow falls between the two; flows seen in
  // both are told apart by id.
  const pending: WatchFlowsResponse[] = [];
  let historyDone = false;
  let failed: unknown;
  let wake: (() => void) | undefined;
  const stream = (async () => {
    try {
      for await (const ev of api.watchFlows({ filter, live: true }, { signal })) {
        pending.push(ev);
        if (historyDone) wake?.();
      }
    } catch (e) {
      failed = e;
    }
    wake?.();
  })();
  let reset = false;
  let loaded = 0;
  let pageToken = "";
  do {
    const page = await api.listFlows({ filter, pageSize: PAGE, pageToken }, { signal });
    if (!reset) {
      sink.reset();
      reset = true;
    }
    sink.history(page.flows.slice(0, maxHistory - loaded));
    loaded += page.flows.length;
    pageToken = page.nextPageToken;
    sink.state({ kind: "loading", loaded });
    if (failed) throw failed;
  } while (pageToken && loaded < maxHistory);
  historyDone = true;
  sink.state({ kind: "live" });
  live();
  for (;;) {
    if (pending.length) sink.live(pending.splice(0));
    if (failed) throw failed;
    const done = await Promise.race([stream.then(() => true), new Promise<false>((r) => (wake = () => r(false)))]);
    if (done && !pending.length) {
      if (failed) throw failed;
      return;
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });
}
