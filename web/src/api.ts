// The page's client of TapwireService: Connect (binary) on the page's own origin, with the
// token of this tab (sessionStorage) as a bearer header when one was given.
import { createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { TapwireService } from "../../src/gen/tapwire/v1/service_pb.ts";

const TOKEN_KEY = "tapwire.token";

export const token = {
  get: (): string => sessionStorage.getItem(TOKEN_KEY) ?? "",
  set: (t: string) => sessionStorage.setItem(TOKEN_KEY, t),
};

export function authHeaders(): Record<string, string> {
  const t = token.get();
  return t ? { authorization: `Bearer ${t}` } : {};
}

const bearer: Interceptor = (next) => (req) => {
  const t = token.get();
  if (t) req.header.set("authorization", `Bearer ${t}`);
  return next(req);
};

export const api = createClient(
  TapwireService,
  createConnectTransport({ baseUrl: location.origin, useBinaryFormat: true, interceptors: [bearer] }),
);
export type Api = typeof api;
