// One flow in full: the exchange, headers in order, bodies and messages by type, timing, the
// connection and process, and what tapwire could not see.
import type { ComponentChildren } from "preact";
import { useState } from "preact/hooks";
import { Role, type Flow, type FlowMessage, type GrpcMessage, type Header } from "../../../src/gen/tapwire/v1/flow_pb.ts";
import { clock, duration, endpoint, millis, size } from "../format.ts";
import { protocolName, urlOf } from "../flow-row.ts";
import { curlCommand } from "../curl.ts";
import { BodyView, contentType, Hex } from "./body-view.tsx";
import { JsonTree, parseJsonText } from "./json-tree.tsx";

export function Detail({ flow, onClose }: { flow: Flow; onClose: () => void }) {
  const req = flow.request;
  const res = flow.response;
  const start = millis(flow.startTime);
  const end = millis(flow.endTime);
  const c = flow.connection;
  return (
    <div class="detail" data-flow-id={flow.id}>
      <div class="detail-head">
        <span class="detail-title">
          <b>{flow.database ? flow.database.operation : (req?.method ?? "(no request)")}</b> {flow.database ? flow.database.statement : req ? urlOf(flow) : ""}
        </span>
        <CopyCurl flow={flow} />
        <button type="button" class="close" title="Close (Esc)" onClick={onClose}>×</button>
      </div>
      <div class="detail-body">
        <Section title="Summary">
          <dl class="kv">
            <dt>Status</dt>
            <dd>{flow.database ? (flow.database.error ? `error ${flow.database.error.code}` : flow.database.replyType ? `reply (${flow.database.replyType})` : "no reply") : res ? `${res.status} ${res.reason}${flow.open ? " (open)" : ""}` : flow.open ? "open" : "no response"}</dd>
            {flow.database && (
              <>
                <dt>Reply</dt>
                <dd>
                  <pre class="body">{flow.database.reply + (flow.database.replyTruncated ? "\n…" : "")}</pre>
                </dd>
              </>
            )}
            {flow.grpc && (
              <>
                <dt>gRPC</dt>
                <dd>
                  {flow.grpc.service}/{flow.grpc.method} · {flow.grpc.status !== undefined ? `${flow.grpc.statusName || flow.grpc.status}${flow.grpc.statusMessage && flow.grpc.statusMessage !== flow.grpc.statusName ? `: ${flow.grpc.statusMessage}` : ""}` : "no status"}
                </dd>
              </>
            )}
            <dt>Protocol</dt>
            <dd>{protocolName(flow.protocol)}{req?.version ? ` (${req.version})` : ""}{flow.http2 ? ` · stream ${flow.http2.streamId}` : ""}{flow.http2?.reset ? ` · reset ${flow.http2.reset.error} by ${roleName(flow.http2.reset.sentBy)}${flow.http2.reset.goaway ? " (GOAWAY)" : ""}` : ""}</dd>
            <dt>Timing</dt>
            <dd>{start !== undefined ? clock(start) : "?"} → {end !== undefined ? clock(end) : "…"}{start !== undefined && end !== undefined ? ` · ${duration(end - start)}` : ""}</dd>
            <dt>TLS</dt>
            <dd>{c?.tls ? c.tlsLibrary || "yes" : "no (plaintext)"}</dd>
            <dt>Connection</dt>
            <dd>{endpoint(c?.source)} → {endpoint(c?.destination)} · #{String(c?.id ?? 0n)} · seen from the {roleName(c?.role)}</dd>
            <dt>Process</dt>
            <dd>{c?.process ? `${c.process.comm}[${c.process.pid}]${c.process.exe ? ` ${c.process.exe}` : ""}` : "?"}</dd>
            {c?.container && (
              <>
                <dt>Container</dt>
                <dd>{c.container.name || "(no name)"} · {c.container.image || "(no image)"} · {c.container.id.slice(0, 12)}</dd>
              </>
            )}
            {flow.missing && (
              <>
                <dt>Missing</dt>
                <dd class="missing">{flow.missing.reason || "something (no reason given)"}</dd>
              </>
            )}
          </dl>
        </Section>
        {req && (
          <Section title={`Request headers (${req.headers.length})`}>
            <Headers headers={req.headers} />
            {req.trailers.length > 0 && <Headers headers={req.trailers} label="trailer" />}
          </Section>
        )}
        {req && !flow.grpc && (req.body.length > 0 || req.bodySize > 0n) && (
          <Section title="Request body">
            <BodyView body={req.body} type={contentType(req.headers)} totalSize={req.bodySize} truncated={req.bodyTruncated} decoded={req.bodyDecodedEncoding} />
          </Section>
        )}
        {flow.grpc && (
          <Section title={`Request messages (${flow.grpc.requestMessages.length}${flow.grpc.requestMessagesDropped ? ` + ${flow.grpc.requestMessagesDropped} not kept` : ""})`}>
            <GrpcMessages messages={flow.grpc.requestMessages} />
          </Section>
        )}
        {res && (
          <Section title={`Response headers (${res.headers.length})`}>
            {res.informationalStatuses.length > 0 && <div class="note">before it: {res.informationalStatuses.join(", ")}</div>}
            <Headers headers={res.headers} />
          </Section>
        )}
        {res && !flow.grpc && (res.body.length > 0 || res.bodySize > 0n) && (
          <Section title="Response body">
            <BodyView body={res.body} type={contentType(res.headers)} totalSize={res.bodySize} truncated={res.bodyTruncated} decoded={res.bodyDecodedEncoding} />
          </Section>
        )}
        {flow.grpc && (
          <Section title={`Response messages (${flow.grpc.responseMessages.length}${flow.grpc.responseMessagesDropped ? ` + ${flow.grpc.responseMessagesDropped} not kept` : ""})`}>
            <GrpcMessages messages={flow.grpc.responseMessages} />
          </Section>
        )}
        {res && res.trailers.length > 0 && (
          <Section title={`Trailers (${res.trailers.length})`}>
            <Headers headers={res.trailers} />
          </Section>
        )}
        {flow.messages.length > 0 && (
          <Section title={`Messages (${flow.messages.length}${flow.messagesDropped ? ` + ${flow.messagesDropped} not kept` : ""})`}>
            <StreamMessages messages={flow.messages} />
          </Section>
        )}
      </div>
    </div>
  );
}

function roleName(r: Role | undefined): string {
  return r === Role.CLIENT ? "client" : r === Role.SERVER ? "server" : "unknown side";
}

function Section({ title, children }: { title: string; children: ComponentChildren }) {
  return (
    <details class="section" open>
      <summary>{title}</summary>
      {children}
    </details>
  );
}

function Headers({ headers, label }: { headers: Header[]; label?: string }) {
  return (
    <table class="headers">
      <tbody>
        {headers.map((h, i) => (
          <tr key={i}>
            <th>{h.nameUnknown ? <i>(unknown name)</i> : h.name}{label ? ` (${label})` : ""}</th>
            <td>{h.valueUnknown ? <i>(unknown value: its table entry was sent before tapwire joined)</i> : h.value}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function GrpcMessages({ messages }: { messages: GrpcMessage[] }) {
  if (!messages.length) return <div class="note">none</div>;
  return (
    <div class="messages">
      {messages.map((m, i) => (
        <div class="message" key={i}>
          <div class="message-head">
            #{i} · {size(m.size)}{m.compressed ? " · compressed" : ""}{m.truncated ? " · cut short" : ""}{m.type ? ` · ${m.type}` : ""}
          </div>
          {m.error && <div class="missing">{m.error}</div>}
          {m.json ? <JsonOrText text={m.json} /> : m.data.length ? <Hex bytes={m.data} /> : null}
        </div>
      ))}
    </div>
  );
}

function JsonOrText({ text }: { text: string }) {
  const v = parseJsonText(text);
  return v === undefined ? <pre class="body-text">{text}</pre> : <JsonTree value={v} />;
}

function StreamMessages({ messages }: { messages: FlowMessage[] }) {
  return (
    <div class="messages">
      {messages.map((m, i) => {
        const t = millis(m.time);
        const head = `${m.sender === Role.CLIENT ? "→ client" : "← server"} #${m.index}${t !== undefined ? ` · ${clock(t)}` : ""}`;
        const v = m.message;
        return (
          <div class="message" key={i}>
            {v.case === "websocket" && (
              <>
                <div class="message-head">{head} · {v.value.type} · {size(Number(v.value.size))}{v.value.truncated ? " · cut short" : ""}</div>
                {v.value.error && <div class="missing">{v.value.error}</div>}
                {v.value.text ? <JsonOrText text={v.value.text} /> : v.value.data.length ? <Hex bytes={v.value.data} /> : v.value.closeCode ? <div>close {v.value.closeCode} {v.value.closeReason}</div> : null}
              </>
            )}
            {v.case === "sse" && (
              <>
                <div class="message-head">{head} · event {v.value.event || "message"}{v.value.id ? ` · id ${v.value.id}` : ""}</div>
                <JsonOrText text={v.value.data} />
              </>
            )}
            {v.case === "grpc" && (
              <>
                <div class="message-head">{head} · {size(v.value.size)}</div>
                {v.value.json ? <JsonOrText text={v.value.json} /> : <Hex bytes={v.value.data} />}
              </>
            )}
          </div>
        );
      })}
    </div>
  );
}

function CopyCurl({ flow }: { flow: Flow }) {
  const [said, setSaid] = useState("");
  const [shown, setShown] = useState("");
  if (!flow.request) return null;
  const copy = async () => {
    const cmd = curlCommand(flow);
    try {
      await navigator.clipboard.writeText(cmd);
      setSaid("copied");
    } catch {
      // No clipboard (permission, or not a secure context): show it to copy by hand.
      setShown(cmd);
    }
    setTimeout(() => setSaid(""), 1500);
  };
  return (
    <>
      <button type="button" class="copy-curl" onClick={copy}>{said || "Copy as curl"}</button>
      {shown && <textarea class="curl-text" readOnly value={shown} onBlur={() => setShown("")} />}
    </>
  );
}
