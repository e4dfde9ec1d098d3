// Command-line parsing: every mistake is one clear line and exit code 2.
import { parseArgs } from "node:util";

export class UsageError extends Error {}

export interface CaptureArgs {
  command: "capture";
  json: boolean;
  verbose: boolean;
  color: boolean;
  pids: number[];
  comms: string[];
  ports: number[];
  maxBody: number;
  ringBytes: number;
  /** Capture TLS plaintext (OpenSSL uprobes); --no-tls leaves them out. */
  tls: boolean;
  /** gRPC message schemas: directories of .proto files, and descriptor set files. */
  protoPaths: string[];
  protoSets: string[];
}

export type Args =
  | CaptureArgs
  | { command: "doctor" }
  | { command: "inspect"; file: string; json: boolean }
  | { command: "help" }
  | { command: "version" };

export const USAGE = `tapwire — see the HTTP traffic of this host's processes, with eBPF

usage:
  tapwire [capture] [options]   show each HTTP request and response as it happens
  tapwire doctor                check that this machine can run tapwire, and say how to fix what is missing
  tapwire inspect FILE [--json] what tapwire sees in an executable or library: Go and OpenSSL, and where it would probe
  tapwire help | --help         this text
  tapwire version | --version

capture options:
  --json              one flow per line on stdout, as the canonical JSON of tapwire.v1.Flow
  -v, --verbose       also print headers and bodies
  --pid N             only processes with this pid (repeatable)
  --comm NAME         only processes with this name, as in /proc/PID/comm (repeatable)
  --port N            only connections with this local or remote port (repeatable)
  --max-body SIZE     body bytes kept per message (default 1m; k and m suffixes)
  --ring-buffer SIZE  kernel ring buffer size, a power of two (default 16m)
  --no-tls            no TLS plaintext: leave the TLS uprobes out
  --proto-path DIR    read gRPC messages with the .proto files under DIR (repeatable)
  --proto-set FILE    ... or with a binary FileDescriptorSet (buf build -o, protoc
                      --include_imports --descriptor_set_out; repeatable)
  --no-color          no colours, even on a terminal

Diagnostics go to stderr; a line starting with "ready" says every probe is attached.
Needs root (CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN), BTF and Linux 5.17+.`;

function parseSize(flag: string, text: string): number {
  const m = /^(\d+)([kKmMgG]?)[bB]?$/.exec(text.trim());
  if (!m) throw new UsageError(`${flag}: "${text}" is not a size (examples: 65536, 64k, 1m)`);
  const unit = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2].toLowerCase() as "" | "k" | "m" | "g"];
  return Number(m[1]) * unit;
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
  if (command === "help" || args.includes("--help") || args.includes("-h")) return { command: "help" };
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
  if (command !== "capture") throw new UsageError(`unknown command "${command}" (try tapwire --help)`);

  let values;
  try {
    ({ values } = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        json: { type: "boolean", default: false },
        verbose: { type: "boolean", short: "v", default: false },
        pid: { type: "string", multiple: true, default: [] },
        comm: { type: "string", multiple: true, default: [] },
        port: { type: "string", multiple: true, default: [] },
        "max-body": { type: "string", default: "1m" },
        "ring-buffer": { type: "string", default: "16m" },
        "no-color": { type: "boolean", default: false },
        "no-tls": { type: "boolean", default: false },
        "proto-path": { type: "string", multiple: true, default: [] },
        "proto-set": { type: "string", multiple: true, default: [] },
      },
    }));
  } catch (e) {
    // parseArgs' messages are long; keep the first sentence.
    throw new UsageError(String((e as Error).message).split("\n")[0].replace(/\. To specify.*$/, ""));
  }
  const ringBytes = parseSize("--ring-buffer", values["ring-buffer"]!);
  if (ringBytes < 4096 || (ringBytes & (ringBytes - 1)) !== 0 || ringBytes > 1024 ** 3) {
    throw new UsageError(`--ring-buffer: ${ringBytes} must be a power of two between 4k and 1g`);
  }
  for (const c of values.comm!) {
    if (!c || c.length > 15) throw new UsageError(`--comm: "${c}" must be 1 to 15 characters, as the kernel keeps them`);
  }
  return {
    command: "capture",
    json: values.json!,
    verbose: values.verbose!,
    color: isTty && !values["no-color"] && !values.json && !process.env.NO_COLOR,
    pids: values.pid!.map((p) => parseIntFlag("--pid", p, 1, 0x7fffffff)),
    comms: values.comm!,
    ports: values.port!.map((p) => parseIntFlag("--port", p, 1, 65535)),
    maxBody: parseSize("--max-body", values["max-body"]!),
    ringBytes,
    tls: !values["no-tls"],
    protoPaths: values["proto-path"]!,
    protoSets: values["proto-set"]!,
  };
}
