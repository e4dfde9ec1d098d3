// The flows the page holds: rows in arrival order (history first, oldest at the top), at most
// `cap` of them (the oldest go first), with counts per facet kept as rows come, change and go.
import { statusClass, type Row } from "./flow-row.ts";

export type FacetKind = "process" | "container" | "host" | "status";
export const FACET_KINDS: FacetKind[] = ["process", "container", "host", "status"];

function facetKeys(r: Row): [FacetKind, string][] {
  const keys: [FacetKind, string][] = [["process", r.comm], ["host", r.host], ["status", statusClass(r.status)]];
  if (r.container) keys.push(["container", r.container]);
  return keys;
}

export class FlowTable {
  rows: Row[] = [];
  readonly byId = new Map<string, Row>();
  readonly facets: Record<FacetKind, Map<string, number>> = { process: new Map(), container: new Map(), host: new Map(), status: new Map() };
  /** Rows added at the top minus rows dropped from the top, since the list last looked:
   *  what keeps the list's scroll position on the same rows. */
  shifted = 0;
  /** Rows dropped to stay within the cap. */
  evicted = 0;

  constructor(readonly cap: number) {}

  get size(): number {
    return this.rows.length;
  }

  /** A new flow at the bottom, or a known one updated where it is. */
  upsert(r: Row): void {
    const old = this.byId.get(r.id);
    if (old) {
      this.count(old, -1);
      Object.assign(old, r);
      this.count(old, 1);
      return;
    }
    this.byId.set(r.id, r);
    this.rows.push(r);
    this.count(r, 1);
    this.trim();
  }

  /** Older flows above the others (a history page, newest first); known ones are skipped. */
  prepend(newestFirst: Row[]): void {
    const fresh: Row[] = [];
    for (let i = newestFirst.length - 1; i >= 0; i--) {
      const r = newestFirst[i]!;
      if (this.byId.has(r.id)) continue;
      this.byId.set(r.id, r);
      this.count(r, 1);
      fresh.push(r);
    }
    const room = Math.max(0, this.cap - this.rows.length);
    // Past the cap, history older than what is held is not wanted.
    const kept = fresh.length > room ? fresh.slice(fresh.length - room) : fresh;
    for (const r of fresh.slice(0, fresh.length - kept.length)) this.forget(r);
    this.rows = kept.concat(this.rows);
    this.shifted += kept.length;
  }

  /** Messages of an open flow arrived. */
  addMessages(id: string, n: number): boolean {
    const r = this.byId.get(id);
    if (!r) return false;
    r.messages += n;
    return true;
  }

  clear(): void {
    this.rows = [];
    this.byId.clear();
    for (const k of FACET_KINDS) this.facets[k].clear();
    this.shifted = 0;
  }

  /** The facet's values, most frequent first. */
  top(kind: FacetKind, n: number): [string, number][] {
    return [...this.facets[kind]].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).slice(0, n);
  }

  // Dropped in batches of a tenth of the cap: one splice per batch, not one per flow.
  private trim(): void {
    if (this.rows.length <= this.cap) return;
    const n = this.rows.length - this.cap + Math.floor(this.cap / 10);
    for (const r of this.rows.slice(0, n)) this.forget(r);
    this.rows.splice(0, n);
    this.shifted -= n;
    this.evicted += n;
  }

  private forget(r: Row): void {
    this.byId.delete(r.id);
    this.count(r, -1);
  }

  private count(r: Row, d: number): void {
    for (const [kind, key] of facetKeys(r)) {
      const m = this.facets[kind];
      const v = (m.get(key) ?? 0) + d;
      if (v > 0) m.set(key, v);
      else m.delete(key);
    }
  }
}
