// HAR 1.2 validation for the tests: the HAR JSON schema (har-schema, the one har-validator
// wraps) compiled with ajv 8 and its formats (date-time, ipv4/ipv6, uri), plus what the
// spec's text requires and the schema does not say (timings' ranges, time as their sum).
import Ajv from "ajv";
import addFormats from "ajv-formats";
import draft06 from "ajv/dist/refs/json-schema-draft-06.json" with { type: "json" };
// @ts-expect-error har-schema ships no types
import schemas from "har-schema";

const ajv = new Ajv({ strict: false, allErrors: true });
ajv.addMetaSchema(draft06);
addFormats(ajv);
for (const [name, schema] of Object.entries(schemas as Record<string, object>)) if (name !== "har") ajv.addSchema(schema);
const validateHar = ajv.compile((schemas as Record<string, object>).har!);

/** The reasons `doc` is not valid HAR 1.2; empty when it is. */
export function harProblems(doc: unknown): string[] {
  const problems: string[] = [];
  if (!validateHar(doc)) problems.push(...(validateHar.errors ?? []).map((e) => `${e.instancePath} ${e.message}`));
  const entries = (doc as { log?: { entries?: unknown[] } })?.log?.entries;
  if (!Array.isArray(entries)) return problems;
  entries.forEach((e: any, i) => {
    const t = e?.timings ?? {};
    for (const k of ["send", "wait", "receive"]) if (!(t[k] >= 0)) problems.push(`entries[${i}].timings.${k} must be >= 0 (got ${t[k]})`);
    for (const k of ["blocked", "dns", "connect", "ssl"]) if (k in t && !(t[k] >= -1)) problems.push(`entries[${i}].timings.${k} must be >= -1`);
    const sum = ["blocked", "dns", "connect", "send", "wait", "receive"].reduce((s, k) => s + (t[k] > 0 ? t[k] : 0), 0);
    if (Math.abs(sum - e?.time) > 0.001) problems.push(`entries[${i}].time ${e?.time} is not the sum of its timings (${sum})`);
    if (!(e?.time >= 0)) problems.push(`entries[${i}].time must be >= 0`);
    const c = e?.response?.content;
    if (c?.encoding !== undefined && c.encoding !== "base64") problems.push(`entries[${i}].response.content.encoding: ${c.encoding}`);
    if (c?.encoding === "base64" && Buffer.from(c.text ?? "", "base64").toString("base64") !== c.text) problems.push(`entries[${i}].response.content.text is not base64`);
    for (const key of Object.keys(e ?? {})) {
      if (!["startedDateTime", "time", "request", "response", "cache", "timings", "serverIPAddress", "connection", "comment", "pageref"].includes(key) && !key.startsWith("_")) {
        problems.push(`entries[${i}].${key} is neither a HAR field nor a custom one (_name)`);
      }
    }
  });
  return problems;
}
