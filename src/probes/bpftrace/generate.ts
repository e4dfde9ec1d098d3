// A bpftrace program for a Go executable, from a Handlebars template and the facts only ELF
// analysis gives (see go-target.ts). Templates call helpers:
//   {{exe}} {{version}} {{regabi}}         the executable's absolute path, its Go version,
//                                          whether the register ABI is in use
//   {{entry "pkg.Func"}}                   the probe at a function's entry
//   {{returns "pkg.Func"}}                 the probes at each of its RETs, comma-separated
//   {{retOffsets "pkg.Func"}}              the file offsets of its RETs (a list, for {{#each}})
//   {{arg i}}  {{ret i [argWords]}}        argument word i at entry, result word i at a RET
//   {{goroutine}}                          the current goroutine (its runtime.g address)
//   {{offset "pkg.Type" "Field"}}          a struct field's offset (DWARF; built-in table)
//   {{param "key"}} {{params "key"}}       key=value arguments (first value, every value)
//   {{has "key"}}  {{goAtLeast "1.18"}}   conditions for {{#if}}
//   {{randomRead}}                         crypto/rand's reader under this version's name
//   {{addr "pkg.Func"}}                    a function's link-time address
//   {{isString "$var" "TEXT"}}             a condition: $var holds a link-time address at which
//                                          TEXT lies in read-only data (a probe cannot read a
//                                          page of it the program has not touched yet)
// A function the binary lacks, a missing key=value or an unknown field is an error that
// names it: never a script that silently probes nothing.
import Handlebars from "handlebars";
import { GenError, type GoTarget } from "./go-target.ts";
import type { BpftraceSupport } from "./bpftrace-support.ts";

export interface Generated {
  script: string;
  /** The script must run with `bpftrace --unsafe` (probes at raw file offsets). */
  unsafe: boolean;
}

/** crypto/rand's Read as Go versions named it, newest first. */
const RANDOM_READERS = ["crypto/rand.(*reader).Read", "crypto/rand.(*devReader).Read", "crypto/rand.(*rngReader).Read"];

export function generate(opts: {
  template: string;
  templateName: string;
  target: GoTarget;
  params: Map<string, string[]>;
  bpftrace: BpftraceSupport;
  command: string;
}): Generated {
  const { target, params, bpftrace } = opts;
  const hb = Handlebars.create();
  let unsafe = false;
  /** Probes by file offset where bpftrace cannot take "symbol"+offset, or has no symbol to name. */
  const probeAt = (name: string, place: { entry: number; at: number }) => {
    const byName = target.hasSymbols && (place.at === place.entry || bpftrace.symbolOffsets);
    if (byName) return `uprobe:${target.path}:"${name}"${place.at === place.entry ? "" : `+${place.at - place.entry}`}`;
    // A bpftrace without bfd reads the number as an address when the file has symbols: one
    // inside the code would be taken for a place in another function and refused (or worse).
    if (target.hasSymbols && place.at >= target.text[0] && place.at < target.text[1]) {
      throw new GenError(
        `bpftrace${bpftrace.version ? ` ${bpftrace.version}` : ""} cannot probe inside ${name} in ${target.path}: it takes "symbol"+offset only when built with bfd, ` +
          `and would read the file offset 0x${place.at.toString(16)} as an address in the program's code (a copy stripped of its symbols, strip -o COPY, can be traced when the program runs from it)`,
      );
    }
    unsafe = true;
    return `uprobe:${target.path}:0x${place.at.toString(16)}`;
  };
  const str = (v: unknown, what: string) => {
    if (typeof v !== "string" || !v) throw new GenError(`${what}: a name is needed`);
    return v;
  };
  const num = (v: unknown, what: string) => {
    if (typeof v !== "number" || !Number.isInteger(v) || v < 0) throw new GenError(`${what}: a word number (0, 1, ...) is needed`);
    return v;
  };
  // Handlebars passes its options object last; helpers look only at the arguments before it.
  const args = (a: unknown[]) => a.slice(0, -1);
  hb.registerHelper({
    entry: (...a: unknown[]) => {
      const name = str(args(a)[0], "entry");
      const f = target.func(name);
      return probeAt(name, { entry: f.fileOffset, at: f.fileOffset });
    },
    returns: (...a: unknown[]) => {
      const name = str(args(a)[0], "returns");
      const f = target.func(name);
      if (!f.retOffsets.length) throw new GenError(`${name} has no RET instruction: its returns cannot be probed`);
      return f.retOffsets.map((r) => probeAt(name, { entry: f.fileOffset, at: r })).join(",\n");
    },
    retOffsets: (...a: unknown[]) => target.func(str(args(a)[0], "retOffsets")).retOffsets.map((r) => `0x${r.toString(16)}`),
    arg: (...a: unknown[]) => target.arg(num(args(a)[0], "arg")),
    ret: (...a: unknown[]) => {
      const [i, words] = args(a);
      return target.ret(num(i, "ret"), words === undefined ? undefined : num(words, "ret's argument words"));
    },
    goroutine: () => target.goroutine(),
    offset: (...a: unknown[]) => {
      const [type, field] = args(a);
      return target.offset(str(type, "offset"), str(field, "offset's field"));
    },
    param: (...a: unknown[]) => {
      const key = str(args(a)[0], "param");
      const v = params.get(key);
      if (!v?.length) throw new GenError(`${opts.templateName} needs ${key}=VALUE`);
      return v[0];
    },
    params: (...a: unknown[]) => {
      const key = str(args(a)[0], "params");
      const v = params.get(key);
      if (!v?.length) throw new GenError(`${opts.templateName} needs ${key}=VALUE (one or more)`);
      return v;
    },
    has: (...a: unknown[]) => !!params.get(str(args(a)[0], "has"))?.length,
    goAtLeast: (...a: unknown[]) => {
      const m = /^(\d+)\.(\d+)$/.exec(String(args(a)[0]));
      if (!m) throw new GenError(`goAtLeast: "${args(a)[0]}" is not a version like 1.18`);
      const [major, minor] = target.buildInfo.release;
      return major > Number(m[1]) || (major === Number(m[1]) && minor >= Number(m[2]));
    },
    addr: (...a: unknown[]) => `0x${target.func(str(args(a)[0], "addr")).vaddr.toString(16)}`,
    isString: (...a: unknown[]) => {
      const [variable, text] = args(a);
      const at = target.stringAddresses(str(text, "isString's text"));
      return at.length ? `(${at.map((x) => `${str(variable, "isString")} == 0x${x.toString(16)}`).join(" || ")})` : "0";
    },
    randomRead: () => {
      const name = target.firstOf(RANDOM_READERS);
      if (!name) throw new GenError(`${target.path} does not read crypto/rand (none of ${RANDOM_READERS.join(", ")})`);
      return name;
    },
  });
  let body: string;
  try {
    body = hb.compile(opts.template, { noEscape: true, strict: true })({ exe: target.path, version: target.buildInfo.version, regabi: target.regabi });
  } catch (e) {
    if (e instanceof GenError) throw e;
    throw new GenError(`${opts.templateName}: ${(e as Error).message.split("\n")[0]}`);
  }
  const head = [
    `// ${opts.command}`,
    `// ${target.path}: ${target.buildInfo.version}, ${target.regabi ? "register" : "stack"} ABI${target.hasSymbols ? "" : ", stripped"}`,
    unsafe
      ? `// Run: bpftrace --unsafe THIS-FILE  (probes at file offsets: ${bpftrace.version ? `bpftrace ${bpftrace.version} takes no "symbol"+offset probes` : "bpftrace was not found to ask what it takes"}${target.hasSymbols ? "" : "; the binary has no symbol table"})`
      : `// Run: bpftrace THIS-FILE`,
  ];
  // bpftrace runs BEGIN once every probe is attached: the line says tracing has begun (a
  // template of the user's may have its own BEGIN; bpftrace allows one).
  const begin = /^BEGIN\b/m.test(body) ? "" : `\nBEGIN\n{\n  printf("tracing ${opts.templateName.replace(/["\\]/g, "")} in ${target.path}; Ctrl-C ends\\n");\n}\n`;
  return { script: `${head.join("\n")}\n${body.replace(/\n{3,}/g, "\n\n").trimEnd()}\n${begin}`, unsafe };
}
