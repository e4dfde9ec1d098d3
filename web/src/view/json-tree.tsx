// JSON pretty-printed and foldable: objects and arrays are <details> (the browser folds them,
// no script needed); big ones start folded.
import type { JSX } from "preact";

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const OPEN_BELOW = 50;

export function JsonTree({ value }: { value: Json }) {
  return <div class="json">{node(value, 0)}</div>;
}

// `tail`: the comma after a value, written inside it so that it stays on the value's last line.
function node(v: Json, depth: number, tail = ""): JSX.Element {
  if (v === null) return <span class="j-null">null{tail}</span>;
  if (typeof v === "string") return <span class="j-str">{JSON.stringify(v)}{tail}</span>;
  if (typeof v === "number") return <span class="j-num">{String(v)}{tail}</span>;
  if (typeof v === "boolean") return <span class="j-bool">{String(v)}{tail}</span>;
  const isArray = Array.isArray(v);
  const entries: [string, Json][] = isArray ? v.map((x, i) => [String(i), x]) : Object.entries(v);
  const [open, close] = isArray ? ["[", "]"] : ["{", "}"];
  if (!entries.length) return <span>{open + close + tail}</span>;
  return (
    <details class="j-node" open={depth < 6 && entries.length < OPEN_BELOW}>
      <summary>
        {open}
        <span class="j-count">{` ${entries.length} ${isArray ? (entries.length === 1 ? "item" : "items") : entries.length === 1 ? "key" : "keys"} `}</span>
        <span class="j-close-folded">{close + tail}</span>
      </summary>
      <div class="j-children">
        {entries.map(([k, x], i) => (
          <div class="j-entry" key={k}>
            {!isArray && <span class="j-key">{JSON.stringify(k)}</span>}
            {!isArray && ": "}
            {node(x, depth + 1, i < entries.length - 1 ? "," : "")}
          </div>
        ))}
      </div>
      <span class="j-close">{close + tail}</span>
    </details>
  );
}

/** The JSON in these bytes, or undefined when they are not JSON. */
export function parseJson(bytes: Uint8Array): Json | undefined {
  if (!bytes.length) return undefined;
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes)) as Json;
  } catch {
    return undefined;
  }
}

export function parseJsonText(text: string): Json | undefined {
  try {
    return JSON.parse(text) as Json;
  } catch {
    return undefined;
  }
}
