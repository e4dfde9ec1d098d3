// FlowFilter (tapwire.v1) as a predicate: empty fields match everything; a flow must match
// every field that is set, and any one value of a repeated field — and the expression, in
// the filter language (filter-language/), when one is given.
import type { Flow } from "../gen/tapwire/v1/flow_pb.ts";
import type { FlowFilter } from "../gen/tapwire/v1/service_pb.ts";
import { containerMatches } from "../procs/containers.ts";
import { compileFilter } from "./filter-language/compile.ts";

export { FilterSyntaxError } from "./filter-language/parse.ts";
export { compileFilter, FILTER_FIELDS, type CompiledFilter } from "./filter-language/compile.ts";

export type FlowPredicate = (flow: Flow) => boolean;

/** `open`: for a flow as known while it is open — the response's status is not checked, nor
 * any part of the expression about the response. Throws FilterSyntaxError for an expression
 * that does not parse. */
export function compileFlowFilter(filter: FlowFilter | undefined, opts: { open?: boolean } = {}): FlowPredicate {
  if (!filter) return () => true;
  const pids = new Set(filter.pids);
  const names = new Set(filter.processNames);
  const hosts = new Set(filter.hosts.map((h) => h.toLowerCase()));
  const methods = new Set(filter.methods.map((m) => m.toUpperCase()));
  const protocols = new Set(filter.protocols);
  const { pathPrefix, statusMin, statusMax } = filter;
  const checks: FlowPredicate[] = [];
  if (pids.size) checks.push((f) => pids.has(f.connection?.process?.pid ?? -1));
  if (names.size) checks.push((f) => names.has(f.connection?.process?.comm ?? ""));
  if (hosts.size) {
    checks.push((f) => {
      const authority = (f.request?.authority ?? "").toLowerCase();
      return hosts.has(authority) || hosts.has(authority.replace(/:\d+$/, ""));
    });
  }
  if (pathPrefix) checks.push((f) => (f.request?.path ?? "").startsWith(pathPrefix));
  if (methods.size) checks.push((f) => methods.has((f.request?.method ?? "").toUpperCase()));
  if ((statusMin || statusMax) && !opts.open) {
    checks.push((f) => {
      const s = f.response?.status;
      return s !== undefined && (!statusMin || s >= statusMin) && (!statusMax || s <= statusMax);
    });
  }
  if (protocols.size) checks.push((f) => protocols.has(f.protocol));
  if (filter.containers.length) {
    const choices = filter.containers;
    checks.push((f) => {
      const c = f.connection?.container;
      return !!c && choices.some((choice) => containerMatches(choice, c));
    });
  }
  if (filter.expression.trim()) {
    const compiled = compileFilter(filter.expression);
    checks.push(opts.open ? compiled.startMatches : compiled.matches);
  }
  if (checks.length === 1) return checks[0]!;
  return (f) => {
    for (const c of checks) if (!c(f)) return false;
    return true;
  };
}
