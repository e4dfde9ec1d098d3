// The filter language's meaning: an AST (parse.ts) over the fields of a Flow, compiled once
// into closures, so a filter costs a few property reads per flow. Every check of names, types,
// units and regular expressions happens here, before any flow is seen, with the position of
// what is wrong. `a != b` is `not (a == b)` and `!~` is `not ~`, so a flow without the field
// (no response, no such header) matches them; a multi-valued field (a header given twice)
// matches `==`, `~`, `contains` and `in` when any one of its values does.
import type { Flow, Header } from "../../gen/tapwire/v1/flow_pb.ts";
import { Protocol, Role } from "../../gen/tapwire/v1/flow_pb.ts";
import { containerMatches } from "../../procs/containers.ts";
import { nearestWord } from "./nearest-word.ts";
import { FilterSyntaxError, parseFilter, type CompareOp, type FieldRef, type FilterAst, type Value } from "./parse.ts";

type Predicate = (flow: Flow) => boolean;

type FieldType = "text" | "number" | "bool" | "bytes" | "headers";
interface FieldDef {
  type: FieldType;
  /** text/number/bool: the value, undefined when the flow has none. headers: every value of
   * the named header. bytes: the body as seen. */
  get: (f: Flow, key: string) => unknown;
  /** == compares case-insensitively (methods, host names, enum words). */
  caseless?: boolean;
  /** number fields: what a unit after the digits multiplies by; "" is the bare number. */
  units?: Record<string, number>;
  /** text fields: the only words it can equal (a typo is an error, not an empty result). */
  choices?: string[];
  /** Not known before the flow ends (the response's fields): a live start cannot be judged. */
  atEnd?: boolean;
  /** number fields: words standing for numbers (grpc.status == NOT_FOUND). */
  named?: Record<string, number>;
}

const DURATION_UNITS: Record<string, number> = { "": 1, ns: 1e-6, us: 1e-3, "µs": 1e-3, ms: 1, s: 1e3, m: 60e3, h: 3600e3 };
const SIZE_UNITS: Record<string, number> = { "": 1, b: 1, kb: 1e3, mb: 1e6, gb: 1e9, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3 };
const PROTOCOLS: Record<number, string> = { [Protocol.HTTP1]: "http1", [Protocol.HTTP2]: "http2", [Protocol.GRPC]: "grpc", [Protocol.WEBSOCKET]: "websocket", [Protocol.REDIS]: "redis" };
const GRPC_STATUS = ["OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"];
const EMPTY: string[] = [];

/** The authority without its port ("[::1]:80" → "[::1]"). */
const hostOf = (authority: string) => {
  const end = authority.charCodeAt(0) === 0x5b ? authority.indexOf("]") + 1 : authority.indexOf(":");
  return end > 0 ? authority.slice(0, end) : authority;
};
const valuesOf = (headers: Header[] | undefined, name: string): string[] => {
  if (!headers) return EMPTY;
  let out: string[] | undefined;
  for (const h of headers) if (h.name.length === name.length && h.name.toLowerCase() === name) (out ??= []).push(h.value);
  return out ?? EMPTY;
};
const millis = (t: { seconds: bigint; nanos: number }) => Number(t.seconds) * 1e3 + t.nanos / 1e6;

const FIELDS: Record<string, FieldDef> = {
  id: { type: "text", get: (f) => f.id },
  method: { type: "text", caseless: true, get: (f) => f.request?.method },
  host: { type: "text", caseless: true, get: (f) => (f.request ? hostOf(f.request.authority) : undefined) },
  authority: { type: "text", caseless: true, get: (f) => f.request?.authority },
  path: { type: "text", get: (f) => f.request?.path },
  url: { type: "text", get: (f) => (f.request ? `${f.connection?.tls ? "https" : "http"}://${f.request.authority}${f.request.path}` : undefined) },
  status: { type: "number", atEnd: true, get: (f) => f.response?.status },
  protocol: { type: "text", caseless: true, choices: Object.values(PROTOCOLS), get: (f) => PROTOCOLS[f.protocol] },
  process: { type: "text", get: (f) => f.connection?.process?.comm },
  pid: { type: "number", get: (f) => f.connection?.process?.pid },
  exe: { type: "text", get: (f) => f.connection?.process?.exe || undefined },
  container: { type: "text", get: (f) => (f.connection?.container ? f.connection.container.name || f.connection.container.id : undefined) },
  image: { type: "text", get: (f) => f.connection?.container?.image || undefined },
  tls: { type: "bool", get: (f) => !!f.connection?.tls },
  tls_library: { type: "text", get: (f) => f.connection?.tlsLibrary || undefined },
  role: { type: "text", caseless: true, choices: ["client", "server"], get: (f) => (f.connection?.role === Role.CLIENT ? "client" : f.connection?.role === Role.SERVER ? "server" : undefined) },
  "src.ip": { type: "text", caseless: true, get: (f) => f.connection?.source?.ip },
  "src.port": { type: "number", get: (f) => f.connection?.source?.port },
  "dst.ip": { type: "text", caseless: true, get: (f) => f.connection?.destination?.ip },
  "dst.port": { type: "number", get: (f) => f.connection?.destination?.port },
  duration: { type: "number", atEnd: true, units: DURATION_UNITS, get: (f) => (f.startTime && f.endTime && !f.open ? millis(f.endTime) - millis(f.startTime) : undefined) },
  size: { type: "number", atEnd: true, units: SIZE_UNITS, get: (f) => (f.request || f.response ? Number((f.request?.bodySize ?? 0n) + (f.response?.bodySize ?? 0n)) : undefined) },
  "req.size": { type: "number", atEnd: true, units: SIZE_UNITS, get: (f) => (f.request ? Number(f.request.bodySize) : undefined) },
  "resp.size": { type: "number", atEnd: true, units: SIZE_UNITS, get: (f) => (f.response ? Number(f.response.bodySize) : undefined) },
  header: { type: "headers", atEnd: true, get: (f, k) => [...valuesOf(f.request?.headers, k), ...valuesOf(f.response?.headers, k)] },
  "req.header": { type: "headers", get: (f, k) => valuesOf(f.request?.headers, k) },
  "resp.header": { type: "headers", atEnd: true, get: (f, k) => valuesOf(f.response?.headers, k) },
  body: { type: "bytes", atEnd: true, get: (f) => [f.request?.body, f.response?.body] },
  "req.body": { type: "bytes", atEnd: true, get: (f) => [f.request?.body] },
  "resp.body": { type: "bytes", atEnd: true, get: (f) => [f.response?.body] },
  "grpc.service": { type: "text", get: (f) => f.grpc?.service },
  "grpc.method": { type: "text", get: (f) => f.grpc?.method },
  "grpc.status": { type: "number", atEnd: true, named: Object.fromEntries(GRPC_STATUS.map((n, i) => [n.toLowerCase(), i])), get: (f) => f.grpc?.status },
  "db.system": { type: "text", caseless: true, get: (f) => f.database?.system || undefined },
  "db.operation": { type: "text", caseless: true, get: (f) => f.database?.operation || undefined },
  "db.statement": { type: "text", get: (f) => f.database?.statement || undefined },
  "db.reply": { type: "text", atEnd: true, get: (f) => (f.database?.replyType ? f.database.reply : undefined) },
  "db.error": { type: "text", atEnd: true, get: (f) => (f.database?.error ? `${f.database.error.code} ${f.database.error.message}`.trim() : undefined) },
  "db.rows": { type: "number", atEnd: true, get: (f) => (f.database?.rows === undefined ? undefined : Number(f.database.rows)) },
  open: { type: "bool", get: (f) => f.open },
  incomplete: { type: "bool", atEnd: true, get: (f) => !!f.missing },
};

/** The field names, for help texts and completion. */
export const FILTER_FIELDS = Object.keys(FIELDS);

/** Compiled filter: `matches` for ended flows; `startMatches` for a flow that has just
 * started (its response unknown: a test of a response field neither passes nor fails it,
 * so `status >= 500` lets every start through and `method == POST` decides at once). */
export interface CompiledFilter {
  matches: Predicate;
  startMatches: Predicate;
}

/** Parses and compiles a filter; throws FilterSyntaxError saying where and why. */
export function compileFilter(text: string): CompiledFilter {
  const ast = parseFilter(text);
  const matches = compile(ast);
  const tri = compileStart(ast);
  return { matches, startMatches: (f) => tri(f) !== false };
}

function compile(ast: FilterAst): Predicate {
  switch (ast.kind) {
    case "and": {
      const [a, b] = [compile(ast.left), compile(ast.right)];
      return (f) => a(f) && b(f);
    }
    case "or": {
      const [a, b] = [compile(ast.left), compile(ast.right)];
      return (f) => a(f) || b(f);
    }
    case "not": {
      const a = compile(ast.operand);
      return (f) => !a(f);
    }
    default:
      return leaf(ast);
  }
}

/** Three-valued (Kleene) logic for a start: undefined is "cannot tell yet". */
type Tri = (flow: Flow) => boolean | undefined;
function compileStart(ast: FilterAst): Tri {
  switch (ast.kind) {
    case "and": {
      const [a, b] = [compileStart(ast.left), compileStart(ast.right)];
      return (f) => {
        const x = a(f);
        if (x === false) return false;
        const y = b(f);
        return y === false ? false : x === true && y === true ? true : undefined;
      };
    }
    case "or": {
      const [a, b] = [compileStart(ast.left), compileStart(ast.right)];
      return (f) => {
        const x = a(f);
        if (x === true) return true;
        const y = b(f);
        return y === true ? true : x === false && y === false ? false : undefined;
      };
    }
    case "not": {
      const a = compileStart(ast.operand);
      return (f) => {
        const x = a(f);
        return x === undefined ? undefined : !x;
      };
    }
    default: {
      const test = leaf(ast);
      return fieldOf(ast.field).atEnd ? () => undefined : test;
    }
  }
}

function fieldOf(ref: FieldRef): FieldDef {
  const def = FIELDS[ref.name];
  if (!def) throw new FilterSyntaxError(ref.at, `unknown field "${ref.name}"${suggest(ref.name)}`);
  if (def.type === "headers" && ref.key === undefined) throw new FilterSyntaxError(ref.at, `${ref.name} needs a header name: ${ref.name}["content-type"]`);
  if (def.type !== "headers" && ref.key !== undefined) throw new FilterSyntaxError(ref.at, `${ref.name} takes no name in brackets`);
  return def;
}

function leaf(ast: Extract<FilterAst, { kind: "present" | "compare" }>): Predicate {
  const def = fieldOf(ast.field);
  const key = ast.field.key?.toLowerCase() ?? "";
  const get = def.get;
  if (ast.kind === "present") {
    switch (def.type) {
      case "bool":
        return (f) => get(f, key) === true;
      case "headers":
        return (f) => (get(f, key) as string[]).length > 0;
      case "bytes":
        return (f) => (get(f, key) as (Uint8Array | undefined)[]).some((b) => !!b && b.length > 0);
      default:
        return (f) => get(f, key) !== undefined && get(f, key) !== "";
    }
  }
  const { op, opAt, values } = ast;
  if (op === "!=" || op === "!~") {
    const positive = leaf({ ...ast, op: op === "!=" ? "==" : "~" });
    return (f) => !positive(f);
  }
  const name = ast.field.name + (ast.field.key !== undefined ? `["${ast.field.key}"]` : "");
  switch (def.type) {
    case "bool": {
      if (op !== "==") throw new FilterSyntaxError(opAt, `${name} is true or false: use it alone, with "not", or with == true/false`);
      const v = values[0]!;
      if (v.kind !== "bool") throw new FilterSyntaxError(v.at, `${name} is true or false; found ${shown(v)}`);
      return (f) => get(f, key) === v.value;
    }
    case "number":
      return numberTest(def, name, op, opAt, values, key);
    case "bytes":
      return bytesTest(def, name, op, opAt, values);
    case "text": {
      if (ast.field.name === "container" && (op === "==" || op === "in")) {
        const choices = values.map((v) => textOf(v, name));
        return (f) => {
          const c = f.connection?.container;
          return !!c && choices.some((choice) => containerMatches(choice, c) || choice === c.id);
        };
      }
      const test = textTest(def, name, op, opAt, values);
      return (f) => {
        const v = get(f, key) as string | undefined;
        return v !== undefined && test(v);
      };
    }
    case "headers": {
      const test = textTest(def, name, op, opAt, values);
      return (f) => {
        for (const v of get(f, key) as string[]) if (test(v)) return true;
        return false;
      };
    }
  }
}

function textOf(v: Value, name: string): string {
  if (v.kind === "bool") throw new FilterSyntaxError(v.at, `${name} is text; compare it with a "string" or a word, not ${v.value}`);
  return v.kind === "number" ? v.text : v.text;
}

function textTest(def: FieldDef, name: string, op: CompareOp, opAt: number, values: Value[]): (s: string) => boolean {
  switch (op) {
    case "==":
    case "in": {
      const wanted = values.map((v) => {
        const t = textOf(v, name);
        if (def.choices && !def.choices.includes(t.toLowerCase())) throw new FilterSyntaxError(v.at, `${name} is one of ${def.choices.join(", ")}; found ${shown(v)}`);
        return def.caseless ? t.toLowerCase() : t;
      });
      if (wanted.length === 1) {
        const w = wanted[0]!;
        return def.caseless ? (s) => s.length === w.length && s.toLowerCase() === w : (s) => s === w;
      }
      const set = new Set(wanted);
      return def.caseless ? (s) => set.has(s.toLowerCase()) : (s) => set.has(s);
    }
    case "~": {
      const re = regexOf(values[0]!, name);
      return (s) => re.test(s);
    }
    case "contains": {
      const needle = textOf(values[0]!, name);
      return (s) => s.includes(needle);
    }
    default:
      throw new FilterSyntaxError(opAt, `"${op}" compares numbers, and ${name} is text (use ==, !=, ~, !~, contains or in)`);
  }
}

function numberTest(def: FieldDef, name: string, op: CompareOp, opAt: number, values: Value[], key: string): Predicate {
  if (op === "~" || op === "contains") throw new FilterSyntaxError(opAt, `"${op}" is for text, and ${name} is a number (use == != < <= > >= or in)`);
  const numbers = values.map((v) => {
    if (v.kind === "word" && def.named?.[v.text.toLowerCase()] !== undefined) return def.named[v.text.toLowerCase()]!;
    if (v.kind !== "number") throw new FilterSyntaxError(v.at, `${name} is a number; found ${shown(v)}`);
    const scale = (def.units ?? { "": 1 })[v.unit];
    if (scale === undefined) {
      throw new FilterSyntaxError(v.at, def.units ? `unknown unit "${v.unit}" for ${name} (${Object.keys(def.units).filter(Boolean).join(", ")})` : `${name} is a plain number; "${v.unit}" is not a unit it has`);
    }
    return v.value * scale;
  });
  const get = def.get;
  const n = numbers[0]!;
  const read = (f: Flow) => get(f, key) as number | undefined;
  switch (op) {
    case "==":
      return (f) => read(f) === n;
    case "in": {
      const set = new Set(numbers);
      return (f) => set.has(read(f) as number);
    }
    case "<":
      return (f) => (read(f) ?? NaN) < n;
    case "<=":
      return (f) => (read(f) ?? NaN) <= n;
    case ">":
      return (f) => (read(f) ?? NaN) > n;
    default:
      return (f) => (read(f) ?? NaN) >= n;
  }
}

function bytesTest(def: FieldDef, name: string, op: CompareOp, opAt: number, values: Value[]): Predicate {
  const get = def.get as (f: Flow, k: string) => (Uint8Array | undefined)[];
  if (op === "contains") {
    const needle = Buffer.from(textOf(values[0]!, name));
    return (f) => get(f, "").some((b) => !!b && b.length >= needle.length && Buffer.from(b.buffer, b.byteOffset, b.length).indexOf(needle) >= 0);
  }
  if (op === "~") {
    const re = regexOf(values[0]!, name);
    const utf8 = new TextDecoder();
    return (f) => get(f, "").some((b) => !!b && re.test(utf8.decode(b)));
  }
  throw new FilterSyntaxError(opAt, `${name} is bytes: use contains, ~ or !~`);
}

/** A JS regular expression; a leading (?i) asks for case-insensitive matching. Patterns
 * that can take exponential time on a short input (JS regexes backtrack) are refused: a
 * filter runs on the thread that drains the kernel's ring, for every flow. */
function regexOf(v: Value, name: string): RegExp {
  let source = textOf(v, name);
  let flags = "";
  if (source.startsWith("(?i)")) {
    source = source.slice(4);
    flags = "i";
  }
  let re: RegExp;
  try {
    re = new RegExp(source, flags);
  } catch (e) {
    throw new FilterSyntaxError(v.at, `not a regular expression: ${(e as Error).message}`);
  }
  const risk = backtrackingRisk(source);
  if (risk) throw new FilterSyntaxError(v.at, `this regular expression could take exponential time (${risk}); write it without that`);
  return re;
}

/** Why a (valid) pattern may backtrack exponentially: a repeated group that itself repeats
 * or alternates inside ("(a+)+", "(a|ab)*"), or a backreference; undefined when none. */
export function backtrackingRisk(source: string): string | undefined {
  // Per open group: whether it holds a quantifier or an alternation.
  const groups: { risky: boolean }[] = [];
  let lastGroupRisky = false;
  for (let i = 0; i < source.length; i++) {
    const c = source[i]!;
    if (c === "\\") {
      const next = source[i + 1] ?? "";
      if (/[1-9]/.test(next) || next === "k") return "a backreference";
      i++;
      lastGroupRisky = false;
      continue;
    }
    if (c === "[") {
      // A character class: nothing inside groups or repeats.
      for (i++; i < source.length && source[i] !== "]"; i++) if (source[i] === "\\") i++;
      lastGroupRisky = false;
      continue;
    }
    if (c === "(") {
      groups.push({ risky: false });
      continue;
    }
    if (c === ")") {
      lastGroupRisky = groups.pop()?.risky ?? false;
      // A group inside a risky one makes it risky too.
      if (lastGroupRisky && groups.length) groups[groups.length - 1]!.risky = true;
      continue;
    }
    const repeats = c === "*" || c === "+" || (c === "{" && /^\{\d*,\d*\}|^\{\d{2,}\}/.test(source.slice(i)));
    if (repeats && lastGroupRisky) return "a repeated group that repeats or alternates inside";
    if ((repeats || c === "|") && groups.length) groups[groups.length - 1]!.risky = true;
    lastGroupRisky = false;
  }
  return undefined;
}

function shown(v: Value): string {
  return v.kind === "string" ? JSON.stringify(v.text) : v.kind === "number" ? v.text : String(v.kind === "bool" ? v.value : v.text);
}

/** " (did you mean status?)" for a near miss, else the list. */
function suggest(name: string): string {
  const near = nearestWord(name, FILTER_FIELDS);
  return near ? ` (did you mean ${near}?)` : ` (fields: ${FILTER_FIELDS.join(", ")})`;
}
