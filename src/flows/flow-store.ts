// The flow history: the newest flows, bounded by count and by bytes, oldest evicted first;
// listed newest first a page at a time, and found by id.
import type { Flow } from "../gen/tapwire/v1/flow_pb.ts";
import type { FlowPredicate } from "./flow-filter.ts";
import { flowBytes } from "./flow-size.ts";

interface Entry {
  seq: number;
  flow: Flow;
  bytes: number;
}

export interface FlowStore {
  add(flow: Flow): void;
  get(id: string): Flow | undefined;
  /** Newest first, after the page token (a sequence number) if given. */
  list(match: FlowPredicate, pageSize: number, pageToken: string): { flows: Flow[]; nextPageToken: string };
  /** The newest `n` matching flows, oldest first (to replay before live ones). */
  newest(match: FlowPredicate, n: number): Flow[];
  readonly count: number;
  readonly bytes: number;
}

export class PageTokenError extends Error {}

export function createFlowStore(opts: { maxFlows: number; maxBytes: number }): FlowStore {
  // A deque: entries[head..] are the live ones, oldest first; compacted now and then.
  let entries: Entry[] = [];
  let head = 0;
  const byId = new Map<string, Entry>();
  let bytes = 0;
  let seq = 0;

  function evictOldest() {
    const e = entries[head]!;
    entries[head] = undefined as unknown as Entry;
    head++;
    bytes -= e.bytes;
    byId.delete(e.flow.id);
    if (head > 1024 && head * 2 > entries.length) {
      entries = entries.slice(head);
      head = 0;
    }
  }

  return {
    add(flow) {
      const e = { seq: ++seq, flow, bytes: flowBytes(flow) };
      entries.push(e);
      byId.set(flow.id, e);
      bytes += e.bytes;
      while (entries.length - head > 0 && (entries.length - head > opts.maxFlows || bytes > opts.maxBytes)) evictOldest();
    },
    get: (id) => byId.get(id)?.flow,
    list(match, pageSize, pageToken) {
      let before = Infinity;
      if (pageToken) {
        if (!/^\d+$/.test(pageToken)) throw new PageTokenError(`page_token "${pageToken}" is not one this server gave`);
        before = Number(pageToken);
      }
      const flows: Flow[] = [];
      let last = 0;
      for (let i = entries.length - 1; i >= head && flows.length < pageSize; i--) {
        const e = entries[i]!;
        if (e.seq >= before || !match(e.flow)) continue;
        flows.push(e.flow);
        last = e.seq;
      }
      // More may remain when the page is full and older entries exist.
      const more = flows.length === pageSize && entries.slice(head).some((e) => e.seq < last && match(e.flow));
      return { flows, nextPageToken: more ? String(last) : "" };
    },
    newest(match, n) {
      const out: Flow[] = [];
      for (let i = entries.length - 1; i >= head && out.length < n; i--) if (match(entries[i]!.flow)) out.push(entries[i]!.flow);
      return out.reverse();
    },
    get count() {
      return entries.length - head;
    },
    get bytes() {
      return bytes;
    },
  };
}
