// Redis commands and replies as a person reads them: the operation ("GET", "CLIENT SETNAME"),
// the command line with secrets taken out, and the reply the way redis-cli prints it. The
// secrets never leave this module: AUTH's arguments, HELLO's AUTH pair, MIGRATE's AUTH and
// AUTH2 arguments, the passwords of ACL SETUSER and CONFIG SET of a password.
import { bulkText, type RespValue } from "./resp.ts";

export const REDACTED = "(redacted)";

/** Commands whose first argument names a subcommand (the operation is both words). */
const CONTAINERS = new Set(["ACL", "CLIENT", "CLUSTER", "COMMAND", "CONFIG", "DEBUG", "FUNCTION", "LATENCY", "MEMORY", "MODULE", "OBJECT", "PUBSUB", "SCRIPT", "SENTINEL", "SLOWLOG", "XGROUP", "XINFO"]);
/** Settings that hold a password or a credential (requirepass, masterauth, auth-pass...). */
const SECRET_SETTING = /pass|auth/i;

/** A reply with the values of secret settings replaced (CONFIG GET requirepass answers with
 * the password itself). */
export function redactReply(operation: string, v: RespValue): RespValue {
  if (operation !== "CONFIG GET" || !("items" in v)) return v;
  const items = v.items.map((item, i) => {
    if (i % 2 === 0) return item;
    const key = v.items[i - 1]!;
    const name = key.type === "bulk" ? bulkText(key.data) : key.type === "simple" ? key.text : "";
    return SECRET_SETTING.test(name) ? ({ type: "bulk", data: new TextEncoder().encode(REDACTED), size: REDACTED.length, truncated: false } as RespValue) : item;
  });
  return { ...v, items };
}

export interface RedisCommand {
  operation: string;
  /** Its arguments as sent, all of them (words keeps the first ones). */
  argCount: number;
  /** The words, secrets replaced. */
  words: string[];
  /** The words' full sizes: a word longer than the bound was cut. */
  truncated: boolean;
}

/** A command from the value a client sent (an array of bulk strings); undefined if it is not one. */
export function commandOf(v: RespValue): RedisCommand | undefined {
  if (v.type !== "array" || v.items.length === 0) return undefined;
  let truncated = v.items.length < v.count;
  const words: string[] = [];
  for (const item of v.items) {
    if (item.type !== "bulk" && item.type !== "simple") return undefined;
    if (item.type === "bulk") {
      words.push(bulkText(item.data));
      truncated ||= item.truncated;
    } else if (item.type === "simple") words.push(item.text);
  }
  const name = words[0]!.toUpperCase();
  const operation = CONTAINERS.has(name) && words.length > 1 ? `${name} ${words[1]!.toUpperCase()}` : name;
  return { operation, argCount: v.count - 1, words: redact(operation, words), truncated };
}

function redact(operation: string, words: string[]): string[] {
  const out = words.slice();
  const from = (i: number) => {
    for (let k = i; k < out.length; k++) out[k] = REDACTED;
  };
  const upper = (i: number) => out[i]?.toUpperCase();
  switch (operation) {
    case "AUTH":
      from(1);
      break;
    case "HELLO":
      for (let i = 1; i < out.length; i++) if (upper(i) === "AUTH") for (const k of [i + 1, i + 2]) if (k < out.length) out[k] = REDACTED;
      break;
    case "MIGRATE":
      for (let i = 1; i < out.length; i++) {
        if (upper(i) === "AUTH" && i + 1 < out.length) out[i + 1] = REDACTED;
        if (upper(i) === "AUTH2") for (const k of [i + 1, i + 2]) if (k < out.length) out[k] = REDACTED;
      }
      break;
    case "ACL SETUSER":
      // Password rules: >pass, <pass, #hash, !hash — also inside a selector's parentheses.
      for (let i = 3; i < out.length; i++) {
        const m = /^(\(?)([<>#!])/.exec(out[i]!);
        if (m) out[i] = m[1]! + m[2]! + REDACTED;
      }
      break;
    case "CONFIG SET":
      for (let i = 2; i + 1 < out.length; i += 2) if (SECRET_SETTING.test(out[i]!)) out[i + 1] = REDACTED;
      break;
    case "SENTINEL SET":
      // SENTINEL SET master option value [option value ...]
      for (let i = 3; i + 1 < out.length; i += 2) if (SECRET_SETTING.test(out[i]!)) out[i + 1] = REDACTED;
      break;
    case "SENTINEL CONFIG":
      // SENTINEL CONFIG SET name value
      if (upper(2) === "SET") for (let i = 3; i + 1 < out.length; i += 2) if (SECRET_SETTING.test(out[i]!)) out[i + 1] = REDACTED;
      break;
  }
  return out;
}

/** The command line, each word quoted when it needs to be (as redis-cli reads it back). */
export function statementOf(c: RedisCommand): string {
  return c.words.map((w) => (w === REDACTED || (/^[\x21-\x7e]+$/.test(w) && !/["'\\]/.test(w)) ? w : quote(w))).join(" ") + (c.truncated ? " …" : "");
}

function quote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.charCodeAt(0);
    if (ch === '"' || ch === "\\") out += "\\" + ch;
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (c < 0x20 || c === 0x7f) out += "\\x" + c.toString(16).padStart(2, "0");
    else out += ch;
  }
  return out + '"';
}

export interface RenderedReply {
  text: string;
  truncated: boolean;
  /** Elements of an aggregate reply. */
  rows?: number;
  error?: { code: string; message: string };
}

/** The reply as redis-cli prints it, at most `max` characters. */
export function renderReply(v: RespValue, max: number): RenderedReply {
  const lines: string[] = [];
  let size = 0;
  let truncated = false;
  const add = (s: string) => {
    if (size >= max) {
      truncated = true;
      return;
    }
    const room = max - size;
    lines.push(s.length > room ? s.slice(0, room) : s);
    if (s.length > room) truncated = true;
    size += Math.min(s.length, room) + 1;
  };
  const scalar = (x: RespValue): string => {
    switch (x.type) {
      case "simple":
        return x.text;
      case "error":
        return `(error) ${x.text}`;
      case "integer":
        return `(integer) ${x.value}`;
      case "double":
        return `(double) ${x.text}`;
      case "bignum":
        return `(big number) ${x.text}`;
      case "boolean":
        return `(${x.value ? "true" : "false"})`;
      case "null":
        return "(nil)";
      case "bulk":
      case "verbatim":
      case "blob-error":
        return (x.type === "blob-error" ? "(error) " : "") + quote(bulkText(x.data)) + (x.truncated ? ` … (${x.size} bytes)` : "");
      default:
        return x.count === 0 ? "(empty array)" : "";
    }
  };
  const walk = (x: RespValue, indent: string) => {
    if (!("items" in x) || x.count === 0) return add(indent + scalar(x));
    x.items.forEach((item, i) => {
      const label = `${indent}${i + 1}) `;
      if ("items" in item && item.count > 0) {
        add(label.trimEnd());
        walk(item, indent + "   ");
      } else add(label + scalar(item));
    });
    if (x.items.length < x.count) add(`${indent}… ${x.count - x.items.length} more`);
  };
  walk(v, "");
  const error = v.type === "error" ? errorOf(v.text) : v.type === "blob-error" ? errorOf(bulkText(v.data)) : undefined;
  return { text: lines.join("\n"), truncated, rows: "items" in v ? v.count : undefined, error };
}

function errorOf(text: string): { code: string; message: string } {
  const space = text.indexOf(" ");
  const word = space > 0 ? text.slice(0, space) : text;
  return /^[A-Z][A-Z_]*$/.test(word) ? { code: word, message: space > 0 ? text.slice(space + 1) : "" } : { code: "", message: text };
}
