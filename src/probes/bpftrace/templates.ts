// The built-in templates (src/probes/bpftrace/templates/*.bt.hbs), embedded in the executable.
import goroutine from "./templates/goroutine.bt.hbs" with { type: "text" };
import httpsnoop from "./templates/httpsnoop.bt.hbs" with { type: "text" };
import latency from "./templates/latency.bt.hbs" with { type: "text" };
import random from "./templates/random.bt.hbs" with { type: "text" };
import recover from "./templates/recover.bt.hbs" with { type: "text" };
import shortread from "./templates/shortread.bt.hbs" with { type: "text" };
import skeleton from "./templates/skeleton.bt.hbs" with { type: "text" };
import tcpremote from "./templates/tcpremote.bt.hbs" with { type: "text" };
import tlssecrets from "./templates/tlssecrets.bt.hbs" with { type: "text" };

export const BUILT_IN_TEMPLATES: Record<string, string> = { goroutine, httpsnoop, latency, random, recover, shortread, skeleton, tcpremote, tlssecrets };
