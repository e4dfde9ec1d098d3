// The flow history: the newest flows, bounded by count and by bytes, oldest evicted first;
// listed newest first a page at a time, and found by id. A flow can be in it while it is
// open (started, with the messages seen so far, a bounded number of them); its end replaces
// it where it is.
import { Role, type Flow, type FlowMessage, type GrpcMessage } from "../gen/tapwire/v1/flow_pb.ts";
import type { FlowPredicate } from "./flow-filter.ts";
import { flowBytes, flowMessagesBytes } from "./flow-size.ts";

interface Entry {
  seq: number;
  flow: Flow;
  bytes: number;
  /** While open: its messages so far (gRPC's each side, others in order), shown by get/list. */
  open?: { request: GrpcMessage[]; response: GrpcMessage[]; other: FlowMessage[] };
}

export interface FlowStore {
  /** A flow that ended (replacing it where it is, if it was there open). */
  add(flow: Flow): void;
  /** A flow that started. */
  open(flow: Flow): void;
  /** Messages of an open flow. */
  messages(flowId: string, messages: FlowMessage[]): void;
  get(id: string): Flow | undefined;
  /** Newest first (or oldest first), after the page token (a sequence number) if given; with
   *  `through` (a lastToken), none added after it. */
  list(match: FlowPredicate, pageSize: number, pageToken: string, opts?: { oldestFirst?: boolean; through?: string }): { flows: Flow[]; nextPageToken: string };
  /** A token for the newest flow now: `through` it lists what is there now, and no more. */
  readonly lastToken: string;
  /** The newest `n` matching flows, oldest first (to replay before live ones). */
  newest(match: FlowPredicate, n: number): Flow[];
  readonly count: number;
  readonly bytes: number;
}

export class PageTokenError extends Error {}

/** Messages an open flow shows, at most, each side: a stream that never ends is not a leak. */
export const MAX_OPEN_MESSAGES = 1000;

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

  function bound() {
    while (entries.length - head > 0 && (entries.length - head > opts.maxFlows || bytes > opts.maxBytes)) evictOldest();
  }

  function push(flow: Flow, open?: Entry["open"]) {
    const e: Entry = { seq: ++seq, flow, bytes: flowBytes(flow), open };
    entries.push(e);
    byId.set(flow.id, e);
    bytes += e.bytes;
    bound();
  }

  /** An open flow as its readers see it: the start, with the messages so far. */
  function shown(e: Entry): Flow {
    if (!e.open) return e.flow;
    const { request, response, other } = e.open;
    if (!e.flow.grpc) return other.length ? { ...e.flow, messages: other.slice() } : e.flow;
    return { ...e.flow, grpc: { ...e.flow.grpc, requestMessages: request.slice(), responseMessages: response.slice() } };
  }

  /** The index of the first entry past `seq` in the listing's direction. */
  function firstAfter(seq: number, oldestFirst: boolean): number {
    let lo = head;
    let hi = entries.length; // entries[lo..hi) by seq: find the first with seq > `seq`
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (entries[mid]!.seq > seq) hi = mid;
      else lo = mid + 1;
    }
    return oldestFirst ? lo : lo - 1 - (entries[lo - 1]?.seq === seq ? 1 : 0);
  }

  return {
    add(flow) {
      const e = byId.get(flow.id);
      if (!e) return push(flow);
      const size = flowBytes(flow);
      bytes += size - e.bytes;
      e.flow = flow;
      e.bytes = size;
      e.open = undefined;
      bound();
    },
    open(flow) {
      push(flow, { request: [], response: [], other: [] });
    },
    messages(flowId, messages) {
      const e = byId.get(flowId);
      if (!e?.open) return;
      const kept: FlowMessage[] = [];
      for (const m of messages) {
        const list: unknown[] = m.message.case === "grpc" ? (m.sender === Role.SERVER ? e.open.response : e.open.request) : e.open.other;
        if (list.length >= MAX_OPEN_MESSAGES) continue;
        list.push(m.message.case === "grpc" ? m.message.value : m);
        kept.push(m);
      }
      // Only what is kept weighs: a stream that goes on past the bound costs nothing more.
      const size = flowMessagesBytes(kept);
      e.bytes += size;
      bytes += size;
      bound();
    },
    get: (id) => {
      const e = byId.get(id);
      return e && shown(e);
    },
    list(match, pageSize, pageToken, opts = {}) {
      let from: number | undefined;
      if (pageToken) {
        if (!/^\d+$/.test(pageToken)) throw new PageTokenError(`page_token "${pageToken}" is not one this server gave`);
        from = Number(pageToken);
      }
      const oldest = !!opts.oldestFirst;
      const through = opts.through ? Number(opts.through) : Infinity;
      const step = oldest ? 1 : -1;
      // Where the page starts: past the token's entry (seqs grow along the deque).
      let i = from === undefined ? (oldest ? head : entries.length - 1) : firstAfter(from, oldest);
      const flows: Flow[] = [];
      let last = 0;
      for (; i >= head && i < entries.length; i += step) {
        const e = entries[i]!;
        if (e.seq > through) break;
        const f = shown(e);
        if (!match(f)) continue;
        if (flows.length === pageSize) return { flows, nextPageToken: String(last) }; // one more: a next page
        flows.push(f);
        last = e.seq;
      }
      return { flows, nextPageToken: "" };
    },
    get lastToken() {
      return String(entries[entries.length - 1]?.seq ?? 0);
    },
    newest(match, n) {
      const out: Flow[] = [];
      for (let i = entries.length - 1; i >= head && out.length < n; i--) {
        const f = shown(entries[i]!);
        if (match(f)) out.push(f);
      }
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
