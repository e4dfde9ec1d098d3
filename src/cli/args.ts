// Command-line parsing: every mistake is one clear line and exit code 2.
import { parseArgs, type ParseArgsConfig } from "node:util";
import { DEFAULT_REDACTED } from "../flows/redact.ts";
import { dockerSocketPath } from "../procs/docker.ts";
import { isContainerChoice } from "../procs/containers.ts";
import { DEFAULT_HOLD_TIMEOUT_MS } from "../probes/exec-hold.ts";
import type { PlacementMode } from "../probes/openssl.ts";
import { isLoopback } from "../api/listen-address.ts";
import { compileFilter, FilterSyntaxError } from "../flows/flow-filter.ts";
import { COMMANDS, nearestCommand } from "./usage.ts";

export class UsageError extends Error {}

export interface CaptureArgs {
  command: "capture";
  json: boolean;
  /** With json: a line per flow event (started, messages, ended), not per finished flow. */
  live: boolean;
  /** A HAR file to write every flow to as well (--har); "" for none. */
  har: string;
  verbose: boolean;
  color: boolean;
  pids: number[];
  comms: string[];
  ports: number[];
  maxBody: number;
  /** Bytes of gRPC messages kept per call, each way (--max-stream-body). */
  maxStreamBody: number;
  ringBytes: number;
  /** Capture TLS plaintext (OpenSSL uprobes); --no-tls leaves them out. */
  tls: boolean;
  /** gRPC message schemas: directories of .proto files, and descriptor set files. */
  protoPaths: string[];
  protoSets: string[];
  /** Header names whose values are replaced in every output (empty: none). */
  redact: string[];
  /** Containers to capture (names, ids or id prefixes of 12+); empty: every process. */
  containers: string[];
  /** The Docker Engine API's unix socket ("" to ask no engine). */
  dockerSocket: string;
  /** Hold the first exec of a file tapwire has not seen until it is probed (--no-hold: not). */
  hold: boolean;
  /** ... for at most this long, in ms; then the exec goes on unprobed. */
  holdTimeoutMs: number;
  /** Bytes of printed flows waiting for stdout's reader, at most (whole flows past it are dropped). */
  outputBuffer: number;
  /** Where uprobes go: "chosen" (the cheapest equivalent place, read from the code) or "entry". */
  uprobePlacement: PlacementMode;
  /** Only flows matching this filter expression are printed ("": all). */
  filter: string;
}

export interface ServeArgs extends Omit<CaptureArgs, "command" | "json" | "live" | "color" | "filter" | "har"> {
  command: "serve";
  host: string;
  /** Host names, besides loopback's, that requests may address the server by (--allow-host). */
  allowHosts: string[];
  port: number;
  token: string;
  insecure: boolean;
  tlsCert: string;
  tlsKey: string;
  historyFlows: number;
  historyBytes: number;
  /** A Trayce GUI's address (HOST:PORT) to send flows to, as Trayce's agent does; "" for none. */
  trayce: string;
  /** The largest batch of flows sent to it, in bytes. */
  trayceBatchBytes: number;
}

export interface WatchArgs {
  command: "watch";
  server: string;
  token: string;
  json: boolean;
  verbose: boolean;
  color: boolean;
  pids: number[];
  comms: string[];
  containers: string[];
  last: number;
  /** A filter expression, applied by the server ("": all). */
  filter: string;
  /** CA certificate for an https server with a private CA. */
  cacert: string;
  /** A HAR file to write every flow to as well (--har); "" for none. */
  har: string;
}

export interface GenArgs {
  template: string;
  binary: string;
  params: [string, string][];
  output: string;
}

export interface KeylogArgs {
  /** "" for stdout. */
  output: string;
  pids: number[];
  verbose: boolean;
  /** Hold a Go program's first exec until its probe is attached (--no-hold: not). */
  hold: boolean;
  holdTimeoutMs: number;
}

export type Args =
  | CaptureArgs
  | ServeArgs
  | WatchArgs
  | { command: "doctor" }
  | { command: "containers"; json: boolean; dockerSocket: string }
  | ({ command: "keylog" } & KeylogArgs)
  | ({ command: "gen" } & GenArgs)
  | { command: "inspect"; file: string; json: boolean }
  | { command: "help"; topic?: string }
  | { command: "version" };

function unknownCommand(word: string): UsageError {
  const near = nearestCommand(word);
  return new UsageError(`unknown command "${word}"${near ? ` (did you mean ${near}?)` : ""}: tapwire --help lists the commands`);
}

function parseSize(flag: string, text: string): number {
  const m = /^(\d+)([kKmMgG]?)[bB]?$/.exec(text.trim());
  if (!m) throw new UsageError(`${flag}: "${text}" is not a size (examples: 65536, 64k, 1m)`);
  const unit = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2].toLowerCase() as "" | "k" | "m" | "g"];
  return Number(m[1]) * unit;
}

function sizeInRange(flag: string, text: string, min: number, max: number): number {
  const n = parseSize(flag, text);
  if (n < min || n > max) throw new UsageError(`${flag}: ${n} is out of range (${min}..${max} bytes)`);
  return n;
}

function placementFlag(value: string): PlacementMode {
  if (value !== "chosen" && value !== "entry") throw new UsageError(`--uprobe-placement: "${value}" must be chosen or entry`);
  return value;
}

function parseIntFlag(flag: string, text: string, min: number, max: number): number {
  if (!/^\d+$/.test(text)) throw new UsageError(`${flag}: "${text}" is not a number`);
  const n = Number(text);
  if (n < min || n > max) throw new UsageError(`${flag}: ${n} is out of range (${min}..${max})`);
  return n;
}

export function parseCommandLine(argv: string[], isTty: boolean): Args {
  const [first, ...rest] = argv;
  let command = "capture";
  let args = argv;
  if (first && !first.startsWith("-")) {
    command = first;
    args = rest;
  }
  // `tapwire COMMAND --help` and `tapwire help COMMAND`: that command's usage.
  const named = first !== undefined && !first.startsWith("-");
  if (command === "help") {
    if (args[0] !== undefined && args[0] !== "filter" && !(COMMANDS as readonly string[]).includes(args[0])) throw unknownCommand(args[0]);
    return { command: "help", topic: args[0] };
  }
  if (args.includes("--help") || args.includes("-h")) {
    if (named && !(COMMANDS as readonly string[]).includes(command)) throw unknownCommand(command);
    return { command: "help", topic: named ? command : undefined };
  }
  if (command === "version" || args.includes("--version")) return { command: "version" };
  if (command === "doctor") {
    if (args.length) throw new UsageError(`doctor takes no arguments (got ${args[0]})`);
    return { command: "doctor" };
  }
  if (command === "inspect") {
    const json = args.includes("--json");
    const rest = args.filter((a) => a !== "--json");
    if (rest.length !== 1 || rest[0]!.startsWith("-")) throw new UsageError("inspect takes one file (and --json)");
    return { command: "inspect", file: rest[0]!, json };
  }
  if (command === "watch") return parseWatch(args, isTty);
  if (command === "containers") return parseContainers(args);
  if (command === "keylog") return parseKeylog(args);
  if (command === "gen") return parseGen(args);
  if (command !== "capture" && command !== "serve") throw unknownCommand(command);
  const serve = command === "serve";

  const { values } = parseFlags({
    args,
    strict: true,
    allowPositionals: false,
    options: {
      ...(serve
        ? {
            listen: { type: "string", default: "127.0.0.1:7478" },
            token: { type: "string", default: process.env.TAPWIRE_TOKEN ?? "" },
            insecure: { type: "boolean", default: false },
            "tls-cert": { type: "string", default: "" },
            "tls-key": { type: "string", default: "" },
            history: { type: "string", default: "10000" },
            "history-bytes": { type: "string", default: "256m" },
            trayce: { type: "string", default: "" },
            "trayce-batch-bytes": { type: "string", default: "1m" },
            "allow-host": { type: "string", multiple: true, default: [] },
          }
        : { json: { type: "boolean", default: false }, live: { type: "boolean", default: false }, filter: { type: "string", default: "" }, har: { type: "string", default: "" } }),
      verbose: { type: "boolean", short: "v", default: false },
      pid: { type: "string", multiple: true, default: [] },
      comm: { type: "string", multiple: true, default: [] },
      port: { type: "string", multiple: true, default: [] },
      "max-body": { type: "string", default: "1m" },
      "max-stream-body": { type: "string", default: "16m" },
      "ring-buffer": { type: "string", default: "16m" },
      "no-color": { type: "boolean", default: false },
      "no-tls": { type: "boolean", default: false },
      "hold-timeout": { type: "string", default: String(DEFAULT_HOLD_TIMEOUT_MS) },
      "output-buffer": { type: "string", default: "32m" },
      "no-hold": { type: "boolean", default: false },
      "uprobe-placement": { type: "string", default: "chosen" },
      "proto-path": { type: "string", multiple: true, default: [] },
      "proto-set": { type: "string", multiple: true, default: [] },
      redact: { type: "boolean", default: false },
      "redact-header": { type: "string", multiple: true, default: [] },
      container: { type: "string", multiple: true, default: [] },
      "docker-socket": { type: "string" },
    },
  }) as { values: Record<string, string | boolean | string[] | undefined> };
  const str = (k: string) => values[k] as string;
  const list = (k: string) => values[k] as string[];
  const ringBytes = parseSize("--ring-buffer", str("ring-buffer"));
  if (ringBytes < 4096 || (ringBytes & (ringBytes - 1)) !== 0 || ringBytes > 1024 ** 3) {
    throw new UsageError(`--ring-buffer: ${ringBytes} must be a power of two between 4k and 1g`);
  }
  for (const c of list("comm")) {
    if (!c || c.length > 15) throw new UsageError(`--comm: "${c}" must be 1 to 15 characters, as the kernel keeps them`);
  }
  const redactExtra = list("redact-header");
  for (const c of list("container")) checkContainerChoice("--container", c);
  const common = {
    verbose: values.verbose as boolean,
    pids: pidFlags(list("pid")),
    comms: list("comm"),
    ports: list("port").map((p) => parseIntFlag("--port", p, 1, 65535)),
    maxBody: parseSize("--max-body", str("max-body")),
    maxStreamBody: parseSize("--max-stream-body", str("max-stream-body")),
    ringBytes,
    tls: !values["no-tls"],
    hold: !values["no-hold"],
    holdTimeoutMs: parseIntFlag("--hold-timeout", str("hold-timeout"), 1, 10_000),
    outputBuffer: sizeInRange("--output-buffer", str("output-buffer"), 64 * 1024, 4 * 1024 ** 3),
    uprobePlacement: placementFlag(str("uprobe-placement")),
    protoPaths: list("proto-path"),
    protoSets: list("proto-set"),
    redact: values.redact || redactExtra.length ? [...DEFAULT_REDACTED, ...redactExtra] : [],
    containers: list("container"),
    dockerSocket: dockerSocketPath(values["docker-socket"] as string | undefined),
  };
  if (!serve) {
    if (values.live && !values.json) throw new UsageError("--live goes with --json (the terminal shows open flows without it)");
    return {
      command: "capture",
      ...common,
      json: values.json as boolean,
      live: values.live as boolean,
      filter: filterFlag(str("filter")),
      har: harFlag(str("har")),
      color: isTty && !values["no-color"] && !values.json && !process.env.NO_COLOR,
    };
  }
  const { host, port } = parseListen(str("listen"));
  const token = str("token");
  if (!isLoopback(host) && !token && !values.insecure) {
    throw new UsageError(`--listen ${str("listen")}: anyone who can reach it would see every flow; give --token (or TAPWIRE_TOKEN), or --insecure`);
  }
  const [tlsCert, tlsKey] = [str("tls-cert"), str("tls-key")];
  if (!!tlsCert !== !!tlsKey) throw new UsageError("--tls-cert and --tls-key go together");
  return {
    command: "serve",
    ...common,
    host,
    port,
    token,
    allowHosts: list("allow-host").map(allowHostFlag),
    insecure: values.insecure as boolean,
    tlsCert,
    tlsKey,
    historyFlows: parseIntFlag("--history", str("history"), 1, 10_000_000),
    historyBytes: parseSize("--history-bytes", str("history-bytes")),
    trayce: str("trayce") ? (parseListen(str("trayce"), "--trayce"), str("trayce")) : "",
    trayceBatchBytes: sizeInRange("--trayce-batch-bytes", str("trayce-batch-bytes"), 4096, 64 << 20),
  };
}

function parseWatch(args: string[], isTty: boolean): WatchArgs {
  const { values } = parseFlags({
    args,
    strict: true,
    allowPositionals: false,
    options: {
      server: { type: "string", default: "http://127.0.0.1:7478" },
      token: { type: "string", default: process.env.TAPWIRE_TOKEN ?? "" },
      cacert: { type: "string", default: "" },
      har: { type: "string", default: "" },
      last: { type: "string", default: "0" },
      json: { type: "boolean", default: false },
      verbose: { type: "boolean", short: "v", default: false },
      pid: { type: "string", multiple: true, default: [] },
      comm: { type: "string", multiple: true, default: [] },
      container: { type: "string", multiple: true, default: [] },
      filter: { type: "string", default: "" },
      "no-color": { type: "boolean", default: false },
    },
  });
  let url: URL;
  try {
    url = new URL(values.server!);
  } catch {
    throw new UsageError(`--server: "${values.server}" is not a URL (example: http://127.0.0.1:7478)`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new UsageError(`--server: ${values.server} must be http:// or https://`);
  return {
    command: "watch",
    server: values.server!.replace(/\/+$/, ""),
    token: values.token!,
    cacert: values.cacert!,
    har: harFlag(values.har!),
    last: parseIntFlag("--last", values.last!, 0, 10_000),
    filter: filterFlag(values.filter!),
    json: values.json!,
    verbose: values.verbose!,
    color: isTty && !values["no-color"] && !values.json && !process.env.NO_COLOR,
    pids: pidFlags(values.pid!),
    comms: values.comm!,
    containers: values.container!.map((c) => (checkContainerChoice("--container", c), c)),
  };
}

function parseGen(args: string[]): Args {
  const { values, positionals } = parseFlags({ args, strict: true, allowPositionals: true, options: { output: { type: "string", short: "o", default: "" } } });
  const [template, binary, ...rest] = positionals;
  if (!template || !binary) throw new UsageError("gen takes a template and a Go executable: tapwire gen TEMPLATE BINARY [key=value ...]");
  const params = rest.map((p): [string, string] => {
    const eq = p.indexOf("=");
    if (eq <= 0) throw new UsageError(`gen: "${p}" is not key=value`);
    return [p.slice(0, eq), p.slice(eq + 1)];
  });
  return { command: "gen", template, binary, params, output: values.output! };
}

function parseKeylog(args: string[]): Args {
  const { values } = parseFlags({
    args,
    strict: true,
    allowPositionals: false,
    options: {
      output: { type: "string", short: "o", default: "" },
      pid: { type: "string", multiple: true, default: [] },
      verbose: { type: "boolean", short: "v", default: false },
      "hold-timeout": { type: "string", default: String(DEFAULT_HOLD_TIMEOUT_MS) },
      "no-hold": { type: "boolean", default: false },
    },
  });
  return {
    command: "keylog",
    output: values.output!,
    verbose: values.verbose!,
    pids: pidFlags(values.pid!),
    hold: !values["no-hold"],
    holdTimeoutMs: parseIntFlag("--hold-timeout", values["hold-timeout"]!, 1, 10_000),
  };
}

function parseContainers(args: string[]): Args {
  const { values } = parseFlags({ args, strict: true, allowPositionals: false, options: { json: { type: "boolean", default: false }, "docker-socket": { type: "string" } } });
  return { command: "containers", json: values.json!, dockerSocket: dockerSocketPath(values["docker-socket"]) };
}

/** parseArgs, its mistakes as one UsageError line (its own messages run long). */
function parseFlags<T extends ParseArgsConfig>(config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (e) {
    throw new UsageError(String((e as Error).message).split("\n")[0].replace(/\. To specify.*$/, ""));
  }
}

/** A filter expression, checked here so a mistake is a usage error before anything starts. */
function filterFlag(text: string): string {
  if (!text.trim()) return "";
  try {
    compileFilter(text);
  } catch (e) {
    if (e instanceof FilterSyntaxError) throw new UsageError(`--filter: ${e.message}`);
    throw e;
  }
  return text;
}

function allowHostFlag(name: string): string {
  if (!/^(\[[0-9a-fA-F:.]+\]|[a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?)$/.test(name)) throw new UsageError(`--allow-host: "${name}" is not a host name (give the name alone, without port or scheme)`);
  return name.toLowerCase();
}

/** --har's path ("" when not given); a blank one is a mistake. */
function harFlag(value: string): string {
  if (value && !value.trim()) throw new UsageError("--har: give a file name (example: --har flows.har)");
  return value;
}

function pidFlags(values: string[]): number[] {
  return values.map((p) => parseIntFlag("--pid", p, 1, 0x7fffffff));
}

function checkContainerChoice(flag: string, c: string): void {
  if (!isContainerChoice(c)) throw new UsageError(`${flag}: "${c}" is not a container name or id`);
}

function parseListen(text: string, flag = "--listen"): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s]*)):(\d+)$/.exec(text);
  if (!m) throw new UsageError(`${flag}: "${text}" is not HOST:PORT (examples: 127.0.0.1:7478, [::1]:7478, 0.0.0.0:7478)`);
  return { host: m[1] ?? (m[2] || "0.0.0.0"), port: parseIntFlag(flag, m[3]!, 0, 65535) };
}

