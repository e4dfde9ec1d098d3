// The flow list, virtualised: rows have one height, and only those in view (and a few
// around) are in the DOM, so 100,000 rows scroll like 100. At the bottom it follows new
// flows; elsewhere the rows in view stay put while flows arrive or old ones are dropped.
import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import type { Row } from "../flow-row.ts";
import { clock, duration, size } from "../format.ts";

export const ROW_HEIGHT = 22;
const OVERSCAN = 10;

export interface FlowListProps {
  rows: Row[];
  /** Changes whenever rows changed. */
  version: number;
  /** Rows added at the top minus rows dropped from it since the last call (see FlowTable). */
  takeShift: () => number;
  selectedId: string | undefined;
  onSelect: (id: string) => void;
}

export function FlowList(props: FlowListProps) {
  const { rows, selectedId } = props;
  const box = useRef<HTMLDivElement>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [height, setHeight] = useState(600);
  const follow = useRef(true);

  useEffect(() => {
    const el = box.current!;
    const ro = new ResizeObserver(() => setHeight(el.clientHeight));
    ro.observe(el);
    return () => ro.disconnect();
  }, []);

  // Before paint: keep the same rows in view, or stay at the bottom when following.
  useLayoutEffect(() => {
    const el = box.current!;
    const shift = props.takeShift();
    if (follow.current) el.scrollTop = el.scrollHeight;
    else if (shift) el.scrollTop += shift * ROW_HEIGHT;
    if (el.scrollTop !== scrollTop) setScrollTop(el.scrollTop);
  }, [props.version]);

  // Keyboard: the selection moves, and the list scrolls to keep it in view.
  const selectedIndex = selectedId === undefined ? -1 : rows.findIndex((r) => r.id === selectedId);
  const onKey = (e: KeyboardEvent) => {
    if (e.key !== "ArrowDown" && e.key !== "ArrowUp") return;
    e.preventDefault();
    const i = Math.max(0, Math.min(rows.length - 1, selectedIndex + (e.key === "ArrowDown" ? 1 : -1)));
    const r = rows[i];
    if (!r) return;
    props.onSelect(r.id);
    const el = box.current!;
    if (i * ROW_HEIGHT < el.scrollTop) el.scrollTop = i * ROW_HEIGHT;
    else if ((i + 1) * ROW_HEIGHT > el.scrollTop + el.clientHeight) el.scrollTop = (i + 1) * ROW_HEIGHT - el.clientHeight;
  };

  const onScroll = () => {
    const el = box.current!;
    follow.current = el.scrollTop + el.clientHeight >= el.scrollHeight - ROW_HEIGHT;
    setScrollTop(el.scrollTop);
  };

  const first = Math.max(0, Math.floor(scrollTop / ROW_HEIGHT) - OVERSCAN);
  const last = Math.min(rows.length, Math.ceil((scrollTop + height) / ROW_HEIGHT) + OVERSCAN);
  const visible = rows.slice(first, last);
  return (
    <div class="flow-list" role="grid" aria-rowcount={rows.length}>
      <div class="row head" role="row">
        <span>Time</span>
        <span>Process</span>
        <span>Method</span>
        <span>URL</span>
        <span>Status</span>
        <span>Protocol</span>
        <span class="num">Size</span>
        <span class="num">Duration</span>
      </div>
      <div class="rows" ref={box} onScroll={onScroll} tabIndex={0} onKeyDown={onKey}>
        <div class="rows-space" style={{ height: `${rows.length * ROW_HEIGHT}px` }}>
          {visible.map((r, i) => (
            <FlowRow key={r.id} row={r} top={(first + i) * ROW_HEIGHT} selected={r.id === selectedId} onSelect={props.onSelect} />
          ))}
        </div>
        {rows.length === 0 && <div class="empty">No flows yet. They appear here as tapwire sees them.</div>}
      </div>
    </div>
  );
}

function FlowRow({ row: r, top, selected, onSelect }: { row: Row; top: number; selected: boolean; onSelect: (id: string) => void }) {
  const cls = ["row", selected ? "selected" : "", r.open ? "open" : "", r.status >= 400 || r.grpcStatus ? "error" : "", r.incomplete ? "incomplete" : ""].filter(Boolean).join(" ");
  return (
    <div class={cls} role="row" data-id={r.id} style={{ transform: `translateY(${top}px)` }} onClick={() => onSelect(r.id)}>
      <span>{clock(r.start)}</span>
      <span title={`${r.comm}[${r.pid}] ${r.role}`}>
        {r.comm}
        {r.role ? <em class="role"> {r.role}</em> : null}
        {r.container ? <em> {r.container}</em> : null}
      </span>
      <span>{r.method}</span>
      <span title={r.url}>{r.url}</span>
      <span class="status">{r.open ? (r.status ? `${r.status} open` : "open") : r.status || "—"}{r.grpcStatus ? ` ${r.grpcStatus}` : ""}</span>
      <span>{r.protocol}{r.messages ? ` · ${r.messages} msg` : ""}</span>
      <span class="num">{size(r.size)}</span>
      <span class="num">{duration(r.durationMs)}</span>
    </div>
  );
}
