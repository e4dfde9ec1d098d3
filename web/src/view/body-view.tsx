// A body as its type says: JSON as a tree, images inline (a blob URL), text as text, anything
// else as hex. Bodies were captured up to --max-body; the true size is told beside.
import { useEffect, useMemo } from "preact/hooks";
import type { Header } from "../../../src/gen/tapwire/v1/flow_pb.ts";
import { size } from "../format.ts";
import { JsonTree, parseJson } from "./json-tree.tsx";

const HEX_LIMIT = 16 * 1024;

export function contentType(headers: Header[]): string {
  return headers.find((h) => h.name.toLowerCase() === "content-type")?.value.split(";")[0]!.trim().toLowerCase() ?? "";
}

function utf8(bytes: Uint8Array): string | undefined {
  try {
    const s = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    // Control characters other than whitespace: binary that happens to be valid UTF-8.
    return /[\0-\x08\x0e-\x1f]/.test(s) ? undefined : s;
  } catch {
    return undefined;
  }
}

export function BodyView(props: { body: Uint8Array; type: string; totalSize: bigint; truncated: boolean; decoded: string }) {
  const { body, type } = props;
  const note = [
    props.truncated ? `first ${size(body.length)} of ${size(Number(props.totalSize))} captured` : `${size(Number(props.totalSize))}`,
    props.decoded ? `${props.decoded}-decoded` : "",
    type,
  ].filter(Boolean).join(" · ");
  if (!body.length) return <div class="body-empty">{props.totalSize > 0n ? `${note}; no bytes captured` : "no body"}</div>;
  return (
    <div class="body">
      <div class="body-note">{note}</div>
      <Rendered body={body} type={type} />
    </div>
  );
}

function Rendered({ body, type }: { body: Uint8Array; type: string }) {
  const json = useMemo(() => (type.includes("json") || /^\s*[[{]/.test(String.fromCharCode(...body.subarray(0, 16))) ? parseJson(body) : undefined), [body, type]);
  if (json !== undefined) return <JsonTree value={json} />;
  if (type.startsWith("image/")) return <ImageBody body={body} type={type} />;
  const text = utf8(body);
  if (text !== undefined) return <pre class="body-text">{text}</pre>;
  return <Hex bytes={body} />;
}

function ImageBody({ body, type }: { body: Uint8Array; type: string }) {
  const url = useMemo(() => URL.createObjectURL(new Blob([body as BlobPart], { type })), [body, type]);
  useEffect(() => () => URL.revokeObjectURL(url), [url]);
  return <img class="body-image" src={url} alt={`${type} body`} />;
}

export function Hex({ bytes }: { bytes: Uint8Array }) {
  const lines: string[] = [];
  const n = Math.min(bytes.length, HEX_LIMIT);
  for (let off = 0; off < n; off += 16) {
    const row = bytes.subarray(off, Math.min(off + 16, n));
    const hex = [...row].map((b) => b.toString(16).padStart(2, "0")).join(" ");
    const ascii = [...row].map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : ".")).join("");
    lines.push(`${off.toString(16).padStart(8, "0")}  ${hex.padEnd(47)}  ${ascii}`);
  }
  if (bytes.length > n) lines.push(`… ${size(bytes.length - n)} more`);
  return <pre class="body-hex">{lines.join("\n")}</pre>;
}
