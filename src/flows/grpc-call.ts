// The gRPC view of an HTTP/2 stream whose request is application/grpc*: service and method,
// every message each way (decompressed, and read as JSON by field number or, with a schema,
// by name), and the status from the trailers or a Trailers-Only response.
import type { GrpcCall, GrpcMessage } from "../gen/tapwire/v1/flow_pb.ts";
import { decodeGrpcMessage, grpcStatusName, readGrpcMessages, splitGrpcPath, type GrpcWireMessage } from "../protocols/grpc/messages.ts";
import { wireToJson } from "../protocols/grpc/wire-json.ts";
import type { MessageReader } from "../protocols/grpc/schema.ts";

export interface GrpcSide {
  fields: { name: string; value: string }[];
  trailers: { name: string; value: string }[];
  /** DATA bytes as kept (at most maxBody). */
  raw: Uint8Array;
  /** DATA frames carried data (a Trailers-Only response carries none). */
  sawData: boolean;
  /** The messages, when they were read as they came (else they are read from `raw`), and
   * how many were past the call's budget. */
  read?: { messages: GrpcMessage[]; dropped: number };
}

/** Reads a message with its schema: proto3 JSON and the type name, or undefined if unknown. */
export type MessageDecoder = MessageReader;

/** A message as a flow shows it: read as JSON with its schema when known, else by field number. */
export function grpcMessage(m: GrpcWireMessage, service: string, method: string, which: "request" | "response", decoder?: MessageDecoder): GrpcMessage {
  const known = m.error ? undefined : decoder?.(service, method, which, m.data);
  return {
    $typeName: "tapwire.v1.GrpcMessage",
    compressed: m.compressed,
    size: m.size,
    data: m.data,
    truncated: m.truncated,
    json: known?.json ?? (m.error || m.truncated ? "" : (wireToJson(m.data) ?? "")),
    type: known?.type ?? "",
    error: m.error,
  };
}

export function isGrpc(fields: { name: string; value: string }[]): boolean {
  const ct = fields.find((f) => f.name === "content-type")?.value ?? "";
  return /^application\/grpc(?:[+;]|$)/.test(ct);
}

export function grpcCall(path: string, req: GrpcSide | undefined, res: GrpcSide | undefined, maxBody: number, decoder?: MessageDecoder): GrpcCall {
  const { service, method } = splitGrpcPath(path);
  const header = (side: GrpcSide | undefined, name: string) => side?.fields.find((f) => f.name === name)?.value ?? "";
  const requestEncoding = header(req, "grpc-encoding");
  const responseEncoding = header(res, "grpc-encoding");
  const messages = (side: GrpcSide | undefined, encoding: string, which: "request" | "response"): GrpcMessage[] =>
    !side ? [] : side.read ? side.read.messages : readGrpcMessages(side.raw, encoding, maxBody).map((m) => grpcMessage(m, service, method, which, decoder));
  // The status: trailers, or the response headers of a Trailers-Only response.
  const trailersOnly = !!res && res.trailers.length === 0 && !res.sawData && res.fields.some((f) => f.name === "grpc-status");
  const statusFields = trailersOnly ? res!.fields : (res?.trailers ?? []);
  const statusText = statusFields.find((f) => f.name === "grpc-status")?.value;
  const status = statusText !== undefined && /^\d+$/.test(statusText) ? Number(statusText) : undefined;
  return {
    $typeName: "tapwire.v1.GrpcCall",
    service,
    method,
    requestMessages: messages(req, requestEncoding, "request"),
    responseMessages: messages(res, responseEncoding, "response"),
    status,
    statusName: status === undefined ? "" : grpcStatusName(status),
    statusMessage: decodeGrpcMessage(statusFields.find((f) => f.name === "grpc-message")?.value ?? ""),
    requestEncoding: requestEncoding === "identity" ? "" : requestEncoding,
    responseEncoding: responseEncoding === "identity" ? "" : responseEncoding,
    trailersOnly,
    requestMessagesDropped: req?.read?.dropped ?? 0,
    responseMessagesDropped: res?.read?.dropped ?? 0,
  };
}
