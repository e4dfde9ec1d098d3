// The filter expression a click on a facet writes (tapwire's filter language, README).
import type { FacetKind } from "./flow-table.ts";

const quote = (s: string) => JSON.stringify(s);

export function facetExpression(kind: FacetKind, value: string): string {
  switch (kind) {
    case "process":
      return `process == ${quote(value)}`;
    case "container":
      return `container == ${quote(value)}`;
    case "host":
      return `host == ${quote(value)}`;
    case "status": {
      if (value === "none") return "not status";
      const low = Number(value[0]) * 100;
      return `status >= ${low} and status < ${low + 100}`;
    }
  }
}

/** A facet clicked with the filter box not empty and a modifier held narrows what is there. */
export function narrow(current: string, added: string): string {
  return current.trim() ? `(${current.trim()}) and ${added}` : added;
}
