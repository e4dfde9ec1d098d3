// The filter language's syntax: text → one AST, or an error that says where and what was
// expected. It knows nothing of flows; which names are fields, and what each may be compared
// with, is compile.ts's. The grammar, loosest binding first:
//
//   expr       := and ( ("or" | "||") and )*
//   and        := unary ( ("and" | "&&") unary )*
//   unary      := ("not" | "!") unary | "(" expr ")" | comparison
//   comparison := field [ op value | "in" "[" value ("," value)* "]" ]
//   field      := name ( "[" string "]" )?        e.g. status, req.header["content-type"]
//   op         := "==" | "!=" | "<" | "<=" | ">" | ">=" | "~" | "!~" | "contains"
//   value      := string ('…' or "…", backslash escapes) | number [unit] | word | true | false
//
// A field alone is a test of presence (`status`: a response was seen; `tls`: true).

export type CompareOp = "==" | "!=" | "<" | "<=" | ">" | ">=" | "~" | "!~" | "contains" | "in";

export type Value =
  | { kind: "string"; text: string; at: number }
  /** A bare word on the right of a comparison: `method == GET`, `protocol == grpc`. */
  | { kind: "word"; text: string; at: number }
  /** `unit` as written after the digits ("ms", "kb"), lower-cased; "" when none. */
  | { kind: "number"; value: number; unit: string; text: string; at: number }
  | { kind: "bool"; value: boolean; at: number };

export interface FieldRef {
  name: string;
  /** The string in brackets: header["content-type"]. */
  key?: string;
  at: number;
}

export type FilterAst =
  | { kind: "and" | "or"; left: FilterAst; right: FilterAst }
  | { kind: "not"; operand: FilterAst }
  | { kind: "present"; field: FieldRef }
  | { kind: "compare"; field: FieldRef; op: CompareOp; opAt: number; values: Value[] };

/** A filter that cannot be read: where (0-based offset into the text) and why. */
export class FilterSyntaxError extends Error {
  constructor(
    readonly position: number,
    readonly reason: string,
  ) {
    super(`at column ${position + 1}: ${reason}`);
  }
}

type TokenKind = "name" | "string" | "number" | "op" | "punct" | "end";
interface Token {
  kind: TokenKind;
  text: string;
  at: number;
  /** A string's value after escapes; a number's unit. */
  value?: string;
}

const OPERATORS = ["==", "!=", "<=", ">=", "!~", "&&", "||", "<", ">", "~", "!"];
/** Bounds that keep parsing, compiling and matching on a short stack: filters people write
 * are far smaller. */
const MAX_TOKENS = 1024;
const MAX_DEPTH = 64;
const KEYWORDS = new Set(["and", "or", "not", "contains", "in", "true", "false"]);

function describe(t: Token): string {
  if (t.kind === "end") return "the end of the filter";
  if (t.kind === "string") return `the string ${t.text}`;
  return `"${t.text}"`;
}

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const at = i;
    if (c === '"' || c === "'") {
      let value = "";
      i++;
      for (;;) {
        if (i >= text.length) throw new FilterSyntaxError(at, `this string has no closing ${c}`);
        const d = text[i]!;
        if (d === c) break;
        if (d === "\\") {
          const e = text[i + 1];
          if (e === undefined) throw new FilterSyntaxError(at, `this string has no closing ${c}`);
          value += e === "n" ? "\n" : e === "t" ? "\t" : e === "r" ? "\r" : e;
          i += 2;
        } else {
          value += d;
          i++;
        }
      }
      i++;
      tokens.push({ kind: "string", text: text.slice(at, i), at, value });
      continue;
    }
    // An IPv4 address unquoted is a word (src.ip == 127.0.0.1), not a number.
    const ipv4 = /^\d+\.\d+\.\d+\.\d+/.exec(text.slice(i));
    if (ipv4) {
      i += ipv4[0].length;
      tokens.push({ kind: "name", text: ipv4[0], at });
      continue;
    }
    const number = /^(\d+(?:\.\d+)?)([a-zA-Zµ]*)/.exec(text.slice(i));
    if (number) {
      i += number[0].length;
      tokens.push({ kind: "number", text: number[0], at, value: number[2]!.toLowerCase() });
      continue;
    }
    // Names and bare words: a word may hold . - / : (localhost:8080, application/json).
    const name = /^[a-zA-Z_][a-zA-Z0-9_.\-\/:]*/.exec(text.slice(i));
    if (name) {
      i += name[0].length;
      tokens.push({ kind: "name", text: name[0], at });
      continue;
    }
    const op = OPERATORS.find((o) => text.startsWith(o, i));
    if (op) {
      i += op.length;
      tokens.push({ kind: "op", text: op, at });
      continue;
    }
    if ("()[],".includes(c)) {
      i++;
      tokens.push({ kind: "punct", text: c, at });
      continue;
    }
    if (c === "=") throw new FilterSyntaxError(at, `"=" alone is not an operator: compare with "=="`);
    throw new FilterSyntaxError(at, `unexpected character "${c}"`);
  }
  tokens.push({ kind: "end", text: "", at: text.length });
  return tokens;
}

/** Reads a whole filter; an empty one (only spaces) is an error too: the caller decides
 * whether "no filter" is allowed before calling. */
export function parseFilter(text: string): FilterAst {
  const tokens = tokenize(text);
  if (tokens.length > MAX_TOKENS) throw new FilterSyntaxError(tokens[MAX_TOKENS]!.at, `a filter has at most ${MAX_TOKENS} words and signs`);
  let p = 0;
  let depth = 0;
  const peek = () => tokens[p]!;
  const next = () => tokens[p++]!;
  const isWord = (t: Token, ...words: string[]) => t.kind === "name" && words.includes(t.text.toLowerCase());
  const isOp = (t: Token, ...ops: string[]) => (t.kind === "op" || t.kind === "punct") && ops.includes(t.text);
  const fail = (t: Token, expected: string): never => {
    throw new FilterSyntaxError(t.at, `expected ${expected}, found ${describe(t)}`);
  };

  const expr = (): FilterAst => {
    let left = and();
    while (isWord(peek(), "or") || isOp(peek(), "||")) {
      next();
      left = { kind: "or", left, right: and() };
    }
    return left;
  };
  const and = (): FilterAst => {
    let left = unary();
    while (isWord(peek(), "and") || isOp(peek(), "&&")) {
      next();
      left = { kind: "and", left, right: unary() };
    }
    return left;
  };
  const unary = (): FilterAst => {
    const t = peek();
    if (depth >= MAX_DEPTH) throw new FilterSyntaxError(t.at, `nested more than ${MAX_DEPTH} deep`);
    if (isWord(t, "not") || isOp(t, "!")) {
      next();
      depth++;
      const operand = unary();
      depth--;
      return { kind: "not", operand };
    }
    if (isOp(t, "(")) {
      next();
      depth++;
      const inner = expr();
      depth--;
      if (!isOp(peek(), ")")) fail(peek(), `")" to close the "(" at column ${t.at + 1}`);
      next();
      return inner;
    }
    return comparison();
  };
  const comparison = (): FilterAst => {
    const t = peek();
    if (t.kind !== "name" || KEYWORDS.has(t.text.toLowerCase())) fail(t, "a field name (such as status, host, path), \"not\" or \"(\"");
    next();
    const field: FieldRef = { name: t.text.toLowerCase(), at: t.at };
    if (isOp(peek(), "[")) {
      next();
      const key = peek();
      if (key.kind !== "string") fail(key, `a quoted name in the brackets: ${t.text}["content-type"]`);
      next();
      field.key = key.value!;
      if (!isOp(peek(), "]")) fail(peek(), `"]"`);
      next();
    }
    const o = peek();
    const op = o.kind === "op" && !["&&", "||", "!"].includes(o.text) ? o.text : isWord(o, "contains", "in") ? o.text.toLowerCase() : undefined;
    if (!op) return { kind: "present", field };
    next();
    if (op === "in") {
      if (!isOp(peek(), "[")) fail(peek(), `"[" to begin the list after "in"`);
      next();
      const values = [value(o)];
      while (isOp(peek(), ",")) {
        next();
        values.push(value(o));
      }
      if (!isOp(peek(), "]")) fail(peek(), `"," or "]" in the list`);
      next();
      return { kind: "compare", field, op: "in", opAt: o.at, values };
    }
    return { kind: "compare", field, op: op as CompareOp, opAt: o.at, values: [value(o)] };
  };
  const value = (after: Token): Value => {
    const t = peek();
    if (t.kind === "string") {
      next();
      return { kind: "string", text: t.value!, at: t.at };
    }
    if (t.kind === "number") {
      next();
      const digits = t.text.slice(0, t.text.length - t.value!.length);
      return { kind: "number", value: Number(digits), unit: t.value!, text: t.text, at: t.at };
    }
    if (t.kind === "name" && (t.text === "true" || t.text === "false")) {
      next();
      return { kind: "bool", value: t.text === "true", at: t.at };
    }
    if (t.kind === "name" && !KEYWORDS.has(t.text.toLowerCase())) {
      next();
      return { kind: "word", text: t.text, at: t.at };
    }
    return fail(t, `a value after "${after.text}" (a "string", a number or a word)`);
  };

  if (peek().kind === "end") fail(peek(), "a filter");
  const ast = expr();
  if (peek().kind !== "end") {
    const t = peek();
    fail(t, isOp(t, ")") ? `"and", "or" or the end (this ")" closes nothing)` : `"and", "or" or the end`);
  }
  return ast;
}
