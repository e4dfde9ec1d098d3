// Facets with counts over the flows shown: a click filters to one value (with Shift or Ctrl,
// narrows the filter already there).
import { FACET_KINDS, type FacetKind, type FlowTable } from "../flow-table.ts";

const TITLES: Record<FacetKind, string> = { process: "Processes", container: "Containers", host: "Hosts", status: "Status" };
const SHOWN = 15;

export function Sidebar({ table, onPick }: { table: FlowTable; version: number; onPick: (kind: FacetKind, value: string, narrow: boolean) => void }) {
  return (
    <nav class="sidebar">
      {FACET_KINDS.map((kind) => {
        const values = kind === "status" ? ["2xx", "3xx", "4xx", "5xx", "1xx", "none"].filter((s) => table.facets.status.has(s) || s !== "1xx").map((s) => [s, table.facets.status.get(s) ?? 0] as [string, number]) : table.top(kind, SHOWN);
        const more = table.facets[kind].size - values.length;
        return (
          <section class="facet" data-facet={kind} key={kind}>
            <h3>{TITLES[kind]}</h3>
            {values.length === 0 && <div class="note">none</div>}
            <ul>
              {values.map(([v, n]) => (
                <li key={v}>
                  <button type="button" data-value={v} title={kind === "status" && v === "none" ? "no response" : v} onClick={(e) => onPick(kind, v, e.shiftKey || e.ctrlKey || e.metaKey)}>
                    <span class="facet-name">{v || "(none)"}</span>
                    <span class="facet-count">{n}</span>
                  </button>
                </li>
              ))}
            </ul>
            {more > 0 && <div class="note">and {more} more</div>}
          </section>
        );
      })}
    </nav>
  );
}
