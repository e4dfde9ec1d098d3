// Header values that carry secrets, replaced before a flow reaches any output (terminal,
// JSON, the API): the agent sees every credential on the host and should not spread them.
import type { Flow, Header } from "../gen/tapwire/v1/flow_pb.ts";

export const DEFAULT_REDACTED = ["authorization", "cookie", "set-cookie", "proxy-authorization"];
export const REDACTED = "[redacted]";

export function createRedactor(names: string[]): (flow: Flow) => void {
  const set = new Set(names.map((n) => n.toLowerCase()));
  const scrub = (headers: Header[]) => {
    for (const h of headers) if (set.has(h.name.toLowerCase())) h.value = REDACTED;
  };
  return (flow) => {
    for (const m of [flow.request, flow.response]) {
      if (!m) continue;
      scrub(m.headers);
      scrub(m.trailers);
    }
  };
}
