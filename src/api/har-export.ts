// GET /har?filter=EXPR on `tapwire serve`: the history, oldest first, as one HAR document to
// download. Written a page of flows at a time, waiting for the client to take each (the
// history can be hundreds of MB: it is never made into one string), and only the flows there
// when the request came: a busy host does not make the download endless.
import type http from "node:http";
import { create } from "@bufbuild/protobuf";
import { FlowFilterSchema } from "../gen/tapwire/v1/service_pb.ts";
import { compileFlowFilter, type FlowPredicate } from "../flows/flow-filter.ts";
import type { FlowStore } from "../flows/flow-store.ts";
import { flowToHarEntry, HAR_HEAD, HAR_TAIL, isHarFlow } from "../sinks/har.ts";
import type { PageHandler } from "./server.ts";

/** Flows taken from the history at a time (references; each is converted as it is sent). */
const PAGE = 200;

export function harExport(store: FlowStore): PageHandler {
  return (req, res, ctx) => {
    if (!ctx.authorized) return plain(res, 401, "a valid bearer token is required (Authorization: Bearer TOKEN)");
    let match: FlowPredicate;
    try {
      match = compileFlowFilter(create(FlowFilterSchema, { expression: ctx.url.searchParams.get("filter") ?? "" }));
    } catch (e) {
      return plain(res, 400, `filter: ${(e as Error).message}`);
    }
    res.writeHead(200, {
      "content-type": "application/json",
      "content-disposition": `attachment; filename="tapwire-${fileTime(new Date())}.har"`,
      "cache-control": "no-store",
    });
    if (req.method === "HEAD") return void res.end();
    void send(res, store, match).catch(() => res.destroy());
  };
}

async function send(res: http.ServerResponse, store: FlowStore, match: FlowPredicate): Promise<void> {
  const through = store.lastToken;
  let token = "";
  let first = true;
  if (!res.write(HAR_HEAD)) await drained(res);
  do {
    if (res.destroyed) return;
    const page = store.list(match, PAGE, token, { oldestFirst: true, through });
    // An entry at a time: one with large bodies is megabytes; a page of them is never one string.
    for (const flow of page.flows) {
      if (res.destroyed) return;
      if (!isHarFlow(flow)) continue;
      if (!res.write((first ? "" : ",\n") + JSON.stringify(flowToHarEntry(flow)))) await drained(res);
      first = false;
    }
    token = page.nextPageToken;
  } while (token);
  res.end(HAR_TAIL);
}

function drained(res: http.ServerResponse): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = () => {
      res.off("drain", done);
      res.off("close", gone);
      resolve();
    };
    const gone = () => {
      res.off("drain", done);
      reject(new Error("the client went away"));
    };
    res.once("drain", done);
    res.once("close", gone);
  });
}

function plain(res: http.ServerResponse, status: number, line: string): void {
  res.writeHead(status, { "content-type": "text/plain; charset=utf-8" });
  res.end(line + "\n");
}

/** 20261206T083005Z: a file name without colons (which some systems refuse). */
function fileTime(d: Date): string {
  return d.toISOString().replace(/\.\d+Z$/, "Z").replace(/[-:]/g, "");
}
