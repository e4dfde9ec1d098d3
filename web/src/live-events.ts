// Live events split into what the list needs (compact rows and message counts, cheap to hold
// while paused) and what the selected flow's detail needs (whole flows and messages, applied
// at once even while the list is paused).
import type { Flow, FlowMessage } from "../../src/gen/tapwire/v1/flow_pb.ts";
import type { WatchFlowsResponse } from "../../src/gen/tapwire/v1/service_pb.ts";
import { toRow, type Row } from "./flow-row.ts";
import type { FlowTable } from "./flow-table.ts";

export type ListChange = { row: Row } | { id: string; messages: number };

export interface Digest {
  list: ListChange[];
  /** The selected flow's newest whole version, when one came. */
  selected?: Flow;
  /** Messages of the selected flow that came after that version (or after what is shown). */
  selectedMessages: FlowMessage[];
  /** Flows the agent dropped for this page (it fell behind). */
  dropped: number;
}

export function digest(events: WatchFlowsResponse[], selectedId: string | undefined): Digest {
  const d: Digest = { list: [], selectedMessages: [], dropped: 0 };
  const whole = (f: Flow) => {
    d.list.push({ row: toRow(f) });
    if (f.id === selectedId) {
      d.selected = f;
      d.selectedMessages = [];
    }
  };
  for (const ev of events) {
    const e = ev.event;
    if (e.case === "flow") whole(e.value);
    else if (e.case === "dropped") d.dropped += Number(e.value.count);
    else if (e.case === "flowEvent") {
      const x = e.value.event;
      if (x.case === "started" || x.case === "ended") whole(x.value);
      else if (x.case === "messages") {
        d.list.push({ id: e.value.flowId, messages: x.value.messages.length });
        if (e.value.flowId === selectedId) d.selectedMessages.push(...x.value.messages);
      }
    }
  }
  return d;
}

export function applyToTable(table: FlowTable, changes: ListChange[]): void {
  for (const c of changes) {
    if ("row" in c) table.upsert(c.row);
    else table.addMessages(c.id, c.messages);
  }
}
