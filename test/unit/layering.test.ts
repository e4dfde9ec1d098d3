// The module map, held against the code: every import of src/ goes downward through the
// layers (cli → api → capture → flows → conn/probes → bpf/procs → protocols/elfkit), sinks
// import no stage, protocols and elfkit import nothing else of tapwire's, and no files import
// each other in a circle (type-only imports included). README.md's "Architecture" says why.
// The web page (web/) is one more client of the public API: it imports itself, the generated
// API types (src/gen) and its npm packages, nothing else of tapwire's.
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const SRC = resolve(import.meta.dir, "../../src");
/** Higher imports lower, never the other way. */
const RANK: Record<string, number> = { cli: 6, api: 5, capture: 4, flows: 3, conn: 2, probes: 2, bpf: 1, procs: 1, sinks: 1, protocols: 0, elfkit: 0 };
/** Layers that import nothing of tapwire's but themselves (sinks: and the Flow model). */
const SELF_CONTAINED = new Set(["protocols", "elfkit", "sinks"]);

/** Whether a file of layer `from` may not import one of layer `to`. */
function breaksTheMap(from: string, to: string): boolean {
  if (to === from || (to === "gen" && from !== "protocols" && from !== "elfkit")) return false;
  if (SELF_CONTAINED.has(from)) return true;
  return RANK[to] === undefined || RANK[from] === undefined || RANK[to]! >= RANK[from]!;
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) {
      if (path === join(SRC, "gen") || path === join(SRC, "bpf/gen")) continue; // generated
      out.push(...sourceFiles(path));
    } else if (/\.ts$/.test(name) && !name.endsWith(".d.ts")) out.push(path);
  }
  return out;
}

/** The files of src/ a file imports (static, type-only and dynamic imports). */
function importsOf(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const specs = [...text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+"([^"]+)"|import\(\s*"([^"]+)"\s*\)/g)].map((m) => m[1] ?? m[2]!);
  return specs.filter((s) => s.startsWith(".")).map((s) => resolve(dirname(file), s)).filter((p) => p.startsWith(SRC + "/"));
}

const layerOf = (file: string) => relative(SRC, file).split("/")[0]!;

const files = sourceFiles(SRC);
const graph = new Map(files.map((f) => [f, importsOf(f)]));

describe("the module map", () => {
  test("every folder of src/ has a place in it", () => {
    const layers = new Set(files.map(layerOf).filter((l) => !l.endsWith(".ts")));
    for (const l of layers) expect([l, l in RANK]).toEqual([l, true]);
  });

  test("imports go downward; protocols and elfkit stand alone; sinks import only the Flow model", () => {
    const wrong: string[] = [];
    for (const [file, imports] of graph) {
      const from = layerOf(file);
      for (const target of imports) {
        if (breaksTheMap(from, layerOf(target))) wrong.push(`${relative(SRC, file)} -> ${relative(SRC, target)}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  test("no files import each other in a circle", () => {
    const state = new Map<string, "open" | "done">();
    const circles: string[] = [];
    const visit = (f: string, path: string[]) => {
      if (state.get(f) === "done") return;
      if (state.get(f) === "open") {
        circles.push([...path.slice(path.indexOf(f)), f].map((p) => relative(SRC, p)).join(" -> "));
        return;
      }
      state.set(f, "open");
      for (const t of graph.get(f) ?? []) visit(t, [...path, f]);
      state.set(f, "done");
    };
    for (const f of files) visit(f, []);
    expect(circles).toEqual([]);
  });

  test("the check would fail on an upward import, and reads every kind of import", () => {
    expect(["flows>cli", "api>cli", "bpf>probes", "protocols>bpf", "protocols>gen", "elfkit>procs", "sinks>flows", "conn>probes"].filter((e) => breaksTheMap(...(e.split(">") as [string, string])))).toHaveLength(8);
    expect(["cli>flows", "api>capture", "capture>probes", "flows>protocols", "sinks>gen", "probes>elfkit", "flows>flows"].filter((e) => breaksTheMap(...(e.split(">") as [string, string])))).toEqual([]);
    expect(importsOf(join(SRC, "api/server.ts")).map((p) => relative(SRC, p))).toContain("protocols/sniff.ts"); // a value import
    expect(importsOf(join(SRC, "cli/main.ts")).map((p) => relative(SRC, p))).toContain("cli/run.ts"); // a dynamic import
  });
});

const WEB = resolve(import.meta.dir, "../../web");
/** What a file of web/ imports that is neither web/ nor src/gen nor an npm package it may use. */
function webImportsOutsideItsLane(file: string, text = readFileSync(file, "utf8")): string[] {
  const specs = [...text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+"([^"]+)"|import\(\s*"([^"]+)"\s*\)|(?:^|\n)\s*import\s+"([^"]+)"/g)].map((m) => m[1] ?? m[2] ?? m[3]!);
  return specs.filter((s) => {
    if (!s.startsWith(".")) return !/^(preact|preact\/hooks|@connectrpc\/connect|@connectrpc\/connect-web|@bufbuild\/protobuf(\/.*)?)$/.test(s);
    const p = resolve(dirname(file), s);
    return !(p.startsWith(WEB + "/") || p.startsWith(join(SRC, "gen") + "/"));
  });
}

describe("the web page's imports", () => {
  const webFiles = (dir: string): string[] =>
    readdirSync(dir).flatMap((n) => {
      const p = join(dir, n);
      return statSync(p).isDirectory() ? webFiles(p) : /\.tsx?$/.test(n) ? [p] : [];
    });

  test("web/ imports only itself, the generated API (src/gen) and its npm packages", () => {
    const files = webFiles(WEB);
    expect(files.length).toBeGreaterThan(5);
    const wrong = files.flatMap((f) => webImportsOutsideItsLane(f).map((s) => `${relative(WEB, f)} -> ${s}`));
    expect(wrong).toEqual([]);
  });

  test("the check would fail on an import of tapwire's internals or another package", () => {
    const text = 'import { x } from "../../src/flows/flow-store.ts";\nimport y from "lodash";\nimport { Flow } from "../../src/gen/tapwire/v1/flow_pb.ts";\nimport { h } from "./view/x.tsx";\n';
    expect(webImportsOutsideItsLane(join(WEB, "src/probe.ts"), text)).toEqual(["../../src/flows/flow-store.ts", "lodash"]);
  });
});
