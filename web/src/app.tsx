// The page: filter box and actions on top, facets on the left, the live flow list, and the
// selected flow's detail on the right.
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Flow } from "../../src/gen/tapwire/v1/flow_pb.ts";
import type { WatchFlowsResponse } from "../../src/gen/tapwire/v1/service_pb.ts";
import { api, token } from "./api.ts";
import { FlowTable, type FacetKind } from "./flow-table.ts";
import { toRow } from "./flow-row.ts";
import { applyToTable, digest, type ListChange } from "./live-events.ts";
import { startFeed, type FeedState } from "./live-feed.ts";
import { facetExpression, narrow } from "./facet-filter.ts";
import { addMessages } from "./live-detail.ts";
import { exportHar } from "./har-export.ts";
import { FlowList } from "./view/flow-list.tsx";
import { Detail } from "./view/detail.tsx";
import { Sidebar } from "./view/sidebar.tsx";
import { TokenForm } from "./view/token-form.tsx";

/** Rows held at most: about 300 bytes each. */
const MAX_ROWS = 150_000;
/** List changes held while paused (rows, not flows), at most; past it they are counted, not kept. */
const MAX_PAUSED = 100_000;
const FILTER_DELAY_MS = 350;

export function App() {
  const table = useMemo(() => new FlowTable(MAX_ROWS), []);
  const [version, setVersion] = useState(0);
  const [feed, setFeed] = useState<FeedState>({ kind: "connecting" });
  const [text, setText] = useState(() => new URLSearchParams(location.hash.slice(1)).get("filter") ?? "");
  const [expression, setExpression] = useState(text);
  const [tokenGen, setTokenGen] = useState(0);
  const [paused, setPaused] = useState(false);
  const [selectedId, setSelectedId] = useState<string>();
  const [detail, setDetail] = useState<{ flow?: Flow; error?: string; v: number }>({ v: 0 });
  const [dropped, setDropped] = useState(0);
  const [info, setInfo] = useState("");
  const [har, setHar] = useState("");

  // Mutable state the feed writes between renders.
  const live = useRef({ paused: false, queue: [] as ListChange[], lostWhilePaused: 0, selectedId: undefined as string | undefined, detail: undefined as Flow | undefined, frame: 0, timer: undefined as ReturnType<typeof setTimeout> | undefined });
  live.current.paused = paused;
  live.current.selectedId = selectedId;
  live.current.detail = detail.flow;

  const render = () => {
    if (live.current.frame) return;
    // One render per frame however many events came; a timer too, for when the browser
    // holds frames back (a hidden or headless tab), so the list never stalls.
    const run = () => {
      if (!live.current.frame) return;
      cancelAnimationFrame(live.current.frame);
      clearTimeout(live.current.timer);
      live.current.frame = 0;
      setVersion((v) => v + 1);
    };
    live.current.frame = requestAnimationFrame(run);
    live.current.timer = setTimeout(run, 100);
  };

  const applyList = (changes: ListChange[]) => {
    applyToTable(table, changes);
    render();
  };

  const onLive = (events: WatchFlowsResponse[]) => {
    const l = live.current;
    const d = digest(events, l.selectedId);
    if (d.selected) {
      const flow = d.selected;
      addMessages(flow, d.selectedMessages);
      setDetail((s) => ({ flow, v: s.v + 1 }));
    } else if (d.selectedMessages.length && l.detail) {
      addMessages(l.detail, d.selectedMessages);
      setDetail((s) => ({ ...s, v: s.v + 1 }));
    }
    if (d.dropped) setDropped((n) => n + d.dropped);
    if (!l.paused) return applyList(d.list);
    const room = Math.max(0, MAX_PAUSED - l.queue.length);
    for (const c of d.list.slice(0, room)) l.queue.push(c);
    l.lostWhilePaused += Math.max(0, d.list.length - room);
    render();
  };

  // The feed: restarted when the filter or the token changes.
  useEffect(() => {
    const f = startFeed(api, expression, MAX_ROWS, {
      reset() {
        table.clear();
        live.current.queue = [];
        render();
      },
      history(flows) {
        table.prepend(flows.map(toRow));
        render();
      },
      live: onLive,
      state(s) {
        setFeed(s);
        if (s.kind === "live") api.getInfo({}).then((i) => setInfo(`tapwire ${i.version} · ${i.probesAttached} probes · kernel ${i.kernel}`), () => {});
      },
    });
    return () => f.stop();
  }, [expression, tokenGen]);

  // Resuming applies what came while paused.
  useEffect(() => {
    if (paused) return;
    const q = live.current.queue;
    live.current.queue = [];
    if (q.length) applyList(q);
  }, [paused]);

  // The filter is applied once typing pauses (or at Enter), and kept in the address.
  useEffect(() => {
    const t = setTimeout(() => setExpression(text), FILTER_DELAY_MS);
    return () => clearTimeout(t);
  }, [text]);
  useEffect(() => {
    history.replaceState(null, "", expression ? `#filter=${encodeURIComponent(expression)}` : location.pathname);
  }, [expression]);

  // The selected flow in full, from the history.
  useEffect(() => {
    if (!selectedId) return setDetail((d) => ({ v: d.v + 1 }));
    let cancelled = false;
    api.getFlow({ id: selectedId }).then(
      (r) => !cancelled && setDetail((d) => ({ flow: r.flow, v: d.v + 1 })),
      (e) => {
        const err = ConnectError.from(e);
        if (!cancelled) setDetail((d) => ({ v: d.v + 1, error: err.code === Code.NotFound ? "This flow is no longer in the agent's history." : err.rawMessage }));
      },
    );
    return () => {
      cancelled = true;
    };
  }, [selectedId]);

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => e.key === "Escape" && setSelectedId(undefined);
    addEventListener("keydown", onKey);
    return () => removeEventListener("keydown", onKey);
  }, []);

  const pick = (kind: FacetKind, value: string, narrowIt: boolean) => {
    const expr = facetExpression(kind, value);
    const next = narrowIt ? narrow(text, expr) : expr;
    setText(next);
    setExpression(next);
  };

  const onHar = async () => {
    setHar("exporting…");
    try {
      const r = await exportHar(expression);
      if (r.ok) {
        setHar(`saved ${r.bytes} bytes`);
        setTimeout(() => setHar(""), 4000);
      }
      else if (r.status === 401) {
        setHar("");
        setFeed({ kind: "unauthenticated", message: r.message });
      } else setHar(`export failed: ${r.status} ${r.message}`);
    } catch (e) {
      setHar(`export failed: ${String(e)}`);
    }
  };

  const queued = live.current.queue.length;
  return (
    <div class="app">
      <header class="top">
        <span class="brand">tapwire</span>
        <form
          class="filter"
          onSubmit={(e) => {
            e.preventDefault();
            setExpression(text);
          }}
        >
          <input
            class={feed.kind === "bad-filter" ? "filter-input bad" : "filter-input"}
            name="filter"
            spellcheck={false}
            autocomplete="off"
            placeholder='filter: status >= 400 and host ~ "api"   ·   process == "curl"   ·   duration > 100ms'
            value={text}
            onInput={(e) => setText((e.target as HTMLInputElement).value)}
          />
          {feed.kind === "bad-filter" && <div class="filter-error" role="alert">{feed.message}</div>}
        </form>
        <button type="button" class="pause" aria-pressed={paused} onClick={() => setPaused(!paused)}>{paused ? `Resume${queued ? ` (${queued})` : ""}` : "Pause"}</button>
        <button type="button" class="export-har" onClick={onHar}>Export HAR</button>
        {har && <span class="har-status">{har}</span>}
      </header>
      <Status feed={feed} count={table.size} evicted={table.evicted} dropped={dropped} paused={paused} lostWhilePaused={live.current.lostWhilePaused} info={info} />
      <main class={selectedId ? "main with-detail" : "main"}>
        <Sidebar table={table} version={version} onPick={pick} />
        <FlowList
          rows={table.rows}
          version={version}
          takeShift={() => {
            const s = table.shifted;
            table.shifted = 0;
            return s;
          }}
          selectedId={selectedId}
          onSelect={setSelectedId}
        />
        {selectedId && (
          <aside class="detail-pane">
            {detail.flow && detail.flow.id === selectedId ? <Detail key={detail.flow.id} flow={detail.flow} onClose={() => setSelectedId(undefined)} /> : <div class="note">{detail.error ?? "loading…"}</div>}
          </aside>
        )}
      </main>
      {feed.kind === "unauthenticated" && (
        <TokenForm
          refused={!!token.get()}
          onToken={(t) => {
            token.set(t);
            // The form goes at once; it comes back (saying the token was refused) only if the
            // agent refuses this one too.
            setFeed({ kind: "connecting" });
            setTokenGen((g) => g + 1);
          }}
        />
      )}
    </div>
  );
}

function Status(p: { feed: FeedState; count: number; evicted: number; dropped: number; paused: boolean; lostWhilePaused: number; info: string }) {
  const f = p.feed;
  const [, tick] = useState(0);
  useEffect(() => {
    if (f.kind !== "unreachable") return;
    const t = setInterval(() => tick((n) => n + 1), 500);
    return () => clearInterval(t);
  }, [f]);
  const state =
    f.kind === "connecting" ? "connecting…"
    : f.kind === "loading" ? `loading history: ${f.loaded} flows`
    : f.kind === "live" ? (p.paused ? "paused" : "live")
    : f.kind === "unreachable" ? `tapwire is unreachable (${f.message}); retrying in ${Math.max(0, Math.ceil((f.retryAt - Date.now()) / 1000))} s`
    : f.kind === "unauthenticated" ? "a token is needed"
    : "the filter has an error";
  return (
    <div class={`status-bar ${f.kind}${p.paused ? " paused" : ""}`} role="status">
      <span class="state">{state}</span>
      <span class="count">{p.count} flows</span>
      {p.evicted > 0 && <span>{p.evicted} oldest left out (page holds {MAX_ROWS})</span>}
      {p.dropped > 0 && <span class="warn">{p.dropped} dropped by the agent (this page fell behind)</span>}
      {p.lostWhilePaused > 0 && <span class="warn">{p.lostWhilePaused} not kept while paused</span>}
      <span class="info">{p.info}</span>
    </div>
  );
}
