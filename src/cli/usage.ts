// What `tapwire --help` and `tapwire COMMAND --help` print: the commands, then each
// command's own flags with their defaults and one example.
import { nearestWord } from "../flows/filter-language/nearest-word.ts";

export const COMMANDS = ["capture", "serve", "watch", "containers", "gen", "keylog", "doctor", "inspect", "help", "version"] as const;
export type CommandName = (typeof COMMANDS)[number];

/** Capture's own: how flows are printed. */
const OUTPUT_FLAGS = `  --json              one flow per line on stdout, as the canonical JSON of tapwire.v1.Flow
  --json --live       one line per flow event instead (tapwire.v1.FlowEvent): started, each
                      gRPC message as it completes, ended with the final flow
  --filter EXPR       only flows matching EXPR (tapwire help filter), e.g.
                      --filter 'status >= 500 or duration > 1s'
  --har FILE          also write every flow to FILE as HAR 1.2 (HTTP Archive: browsers'
                      network panels import it); a valid HAR file after every flow`;

/** What capture and serve share. */
const CAPTURE_FLAGS = `  -v, --verbose       also print headers and bodies (and a line per program held at its exec)
  --pid N             only processes with this pid (repeatable)
  --comm NAME         only processes with this name, as in /proc/PID/comm (repeatable)
  --port N            only connections with this local or remote port (repeatable)
  --container C       only the container named C, or with id (or id prefix of 12+) C;
                      also one that starts later (repeatable)
  --docker-socket P   the Docker Engine API (or podman's) for container names and images
                      (default: DOCKER_HOST's unix:// path, else /var/run/docker.sock)
  --max-body SIZE     body bytes kept per message (default 1m; k and m suffixes); for gRPC,
                      per message
  --max-stream-body SIZE   gRPC message bytes kept per call, each way (default 16m; and at
                      most 10,000 messages): past it messages are counted, not kept
  --ring-buffer SIZE  kernel ring buffer size, a power of two (default 16m)
  --output-buffer SIZE   printed flows waiting for stdout's reader, at most (default 32m);
                      when it falls behind, whole flows are dropped and counted
  --no-tls            no TLS plaintext: leave the TLS uprobes out
  --hold-timeout MS   a program started after tapwire waits at its exec until tapwire has
                      probed its file (and the libssl it loads), so its first request is
                      seen; at most this long (default 200), then it goes on unprobed
  --no-hold           never hold an exec (a new program's first requests may be missed)
  --uprobe-placement chosen|entry
                      where TLS uprobes go: chosen (default) reads each function's code for
                      the cheapest equivalent place; entry puts them at function entries
  --proto-path DIR    read gRPC messages with the .proto files under DIR (repeatable)
  --proto-set FILE    ... or with a binary FileDescriptorSet (buf build -o, protoc
                      --include_imports --descriptor_set_out; repeatable)
  --redact            replace the values of authorization, cookie, set-cookie and
                      proxy-authorization headers in every output
  --redact-header N   ... and of header N too (repeatable; implies --redact)
  --no-color          no colours, even on a terminal`;

const FOOTER = `Diagnostics go to stderr; a line starting with "ready" says every probe is attached.
Needs root (CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN), BTF and Linux 5.17+.`;

export const USAGE = `tapwire — see the HTTP traffic of this host's processes, with eBPF

usage:
  tapwire [capture] [options]   show each HTTP request and response as it happens
  tapwire serve [options]       capture, and serve flows over Connect, gRPC and gRPC-Web
  tapwire watch [options]       print the flows a tapwire serve is capturing, as capture does
  tapwire containers [--json]   the containers running here, and what tapwire probes in each
  tapwire gen TEMPLATE BINARY [key=value ...] [-o FILE]
                                a bpftrace program for a Go executable
  tapwire keylog [-o FILE]      the TLS secrets of Go programs, for Wireshark (NSS key log format)
  tapwire doctor                check that this machine can run tapwire, and say how to fix what is missing
  tapwire inspect FILE [--json] what tapwire sees in an executable or library: Go and OpenSSL, and where it would probe
  tapwire help [COMMAND]        this text, or a command's own (also: tapwire COMMAND --help)
  tapwire help filter           the filter language of --filter, the API and the web page
  tapwire version | --version

capture options:
${OUTPUT_FLAGS}
${CAPTURE_FLAGS}

${FOOTER}`;

const COMMAND_USAGE: Record<Exclude<CommandName, "help" | "version">, string> = {
  capture: `usage: tapwire [capture] [options]

Shows each HTTP/1.x, HTTP/2 and gRPC request and response of this host's processes and
containers as it happens, plaintext and TLS, until SIGINT or SIGTERM; then a summary.

options:
${OUTPUT_FLAGS}
${CAPTURE_FLAGS}

example:
  sudo tapwire --comm curl -v          every request curl makes, with headers and bodies
  sudo tapwire --har flows.har         ... and every flow in flows.har, to open in a browser

${FOOTER}`,
  serve: `usage: tapwire serve [options]

Captures as tapwire capture does, keeps a history, and serves tapwire.v1.TapwireService
over Connect, gRPC and gRPC-Web (HTTP/1.1 and HTTP/2) on one port — and the history as a
HAR 1.2 file at GET /har?filter=EXPR.

options:
  --listen HOST:PORT  where to listen (default 127.0.0.1:7478)
  --token T           require "Authorization: Bearer T" (also TAPWIRE_TOKEN)
  --insecure          allow a non-loopback address without a token
  --tls-cert FILE, --tls-key FILE   serve over TLS
  --history N         flows kept for ListFlows/GetFlow/WatchFlows last (default 10000)
  --history-bytes SIZE   ... and at most this many bytes of them (default 256m)
  --trayce HOST:PORT  also send flows to a Trayce GUI there, speaking Trayce's agent protocol
  --trayce-batch-bytes SIZE   largest batch of flows sent to it (default 1m; a larger flow
                      is sent with its payloads cut to fit, and marked)
  --allow-host NAME   also answer requests addressed to NAME (a proxy's or an alias's host
                      name); by default a loopback listener answers only loopback names, so
                      a web page reaching 127.0.0.1 by another name gets nothing (repeatable)
  and the capture options but --json:
  and the capture options but --json and --har:
${CAPTURE_FLAGS}

example:
  sudo tapwire serve --listen 127.0.0.1:7478
  curl -X POST -H 'Content-Type: application/json' -d '{}' \\
       http://127.0.0.1:7478/tapwire.v1.TapwireService/GetStats
  curl -OJ 'http://127.0.0.1:7478/har?filter=EXPR'   the history, oldest first, as one HAR
       file (filter: optional; with --token, send it as Authorization: Bearer T)

${FOOTER}`,
  watch: `usage: tapwire watch [options]

Prints the flows a tapwire serve is capturing, as tapwire capture prints them.

options:
  --server URL        the tapwire serve to watch (default http://127.0.0.1:7478)
  --token T           its bearer token (also TAPWIRE_TOKEN)
  --cacert FILE       trust this CA for an https server
  --last N            start with the newest N flows of its history (default 0)
  --json              one flow per line, as the canonical JSON of tapwire.v1.Flow
  --har FILE          also write every flow to FILE as HAR 1.2, valid after every flow
  -v, --verbose       also print headers and bodies
  --pid N, --comm NAME, --container C   only these processes or containers (repeatable)
  --filter EXPR       only flows matching EXPR, applied by the server (tapwire help filter)
  --no-color          no colours, even on a terminal

example:
  tapwire watch --last 20 --comm python3
  tapwire watch --filter 'grpc.status != OK or status >= 500'`,
  containers: `usage: tapwire containers [--json] [--docker-socket PATH]

The containers running here: id, name, image, pid, network, and the TLS libraries and Go
programs tapwire probes in each.

options:
  --json              ListContainersResponse as JSON
  --docker-socket P   the Docker Engine API (default: DOCKER_HOST's unix:// path, else
                      /var/run/docker.sock)

example:
  sudo tapwire containers --json`,
  gen: `usage: tapwire gen TEMPLATE BINARY [key=value ...] [-o FILE]

A bpftrace program for a Go executable, from a built-in template (goroutine, httpsnoop,
latency symbol=F, random, recover, shortread, skeleton symbol=F, tcpremote, tlssecrets) or
a Handlebars template file.

options:
  -o, --output FILE   write the program there (default: stdout)

example:
  tapwire gen latency ./server symbol=main.handle -o handle.bt && sudo bpftrace --unsafe handle.bt`,
  keylog: `usage: tapwire keylog [-o FILE] [--pid N] [-v]

The TLS secrets of every Go program (running, or started later), in the NSS key log format
Wireshark and tshark decrypt with. Each line is written once; FILE is made 0600.

options:
  -o, --output FILE   append to FILE (default: stdout)
  --pid N             only this process (repeatable; nothing started later is held)
  --hold-timeout MS   a Go program started after keylog waits at its exec until it is
                      probed, so its first handshake is seen; at most MS (default 200)
  --no-hold           never hold an exec (a new program's first handshakes may be missed)
  -v, --verbose       say which programs are probed

example:
  sudo tapwire keylog -o keys.log   (then: tshark -o tls.keylog_file:keys.log -r capture.pcap)`,
  doctor: `usage: tapwire doctor

Checks privileges, kernel, BTF, ring buffer, tracepoints, uprobes and libbpf, loads the
probes, says whether new programs can be held until probed, and lists the OpenSSL files
and Go programs TLS capture would probe. Exit 1 when something needed is missing.

example:
  sudo tapwire doctor`,
  inspect: `usage: tapwire inspect FILE [--json]

What tapwire sees in an executable or library: ELF kind, Go version and module, the
functions it would probe with their file offsets and RET offsets, the offsets it follows to
the socket, OpenSSL's version — or why it would not probe it.

options:
  --json              the report as JSON

example:
  tapwire inspect /usr/lib/x86_64-linux-gnu/libssl.so.3`,
};

/** `tapwire help filter`: the filter language of --filter, FlowFilter.expression and the page. */
export const FILTER_HELP = `Filter expressions (--filter of capture and watch, FlowFilter.expression in the API, the
web page's filter box): one language, one meaning everywhere.

  status >= 500                          a comparison: FIELD OP VALUE
  method == POST and host == "api.local" and, or, not (also &&, ||, !) and ( )
  path ~ "^/v[12]/users"                 ~ and !~: a regular expression (JS syntax; a
                                         leading (?i) ignores case)
  req.header["content-type"] contains "json"
  process in [curl, python3]             in [a, b]: any of the values
  duration > 250ms and resp.size > 1mb   units: ns us ms s m h; b kb mb gb kib mib gib
  grpc.status != OK                      gRPC status codes by name or number
  not status                             a field alone: it is there (here: no response)

Operators: == != < <= > >= ~ !~ contains in. Values: "strings" (or 'strings'), numbers,
and bare words (GET, grpc, client, 127.0.0.1). a != b is not (a == b): a flow without the
field matches it. A field with several values (a header sent twice, header[] of both
sides) matches ==, ~, contains and in when one of its values does.

Fields:
  method host authority path url          text; method, host and authority ignore case
  status                                  the response's status (none: no response)
  protocol (http1 http2 grpc websocket redis)   role (client server)
  process pid exe container image         the traced process; container by name or id
  tls tls_library                         tls is true or false
  src.ip src.port dst.ip dst.port         the connection (src: the side that opened it)
  duration size req.size resp.size        ms (or with a unit), bytes (bodies as sent)
  header["N"] req.header["N"] resp.header["N"]   a header's values (N in any case)
  body req.body resp.body                 bytes: contains, ~, !~
  grpc.service grpc.method grpc.status    open incomplete id

A mistake is reported with its column: --filter: at column 8: expected a value after "==" ...`;

/** The usage of a command (or the filter language), or the general usage. */
export function usageOf(command?: string): string {
  if (command === "filter") return FILTER_HELP;
  return (command && COMMAND_USAGE[command as keyof typeof COMMAND_USAGE]) || USAGE;
}

/** The command a mistyped one most likely meant, if one is close. */
export function nearestCommand(word: string): string | undefined {
  return nearestWord(word, COMMANDS);
}
