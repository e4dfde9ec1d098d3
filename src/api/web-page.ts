// The web page of `tapwire serve` (web/, bundled by scripts/build.sh into build/web and
// embedded here as text): three static files, served without a token — the page asks for
// it and sends it on its own API calls. Strict headers: the page runs only its own script
// and style, talks only to this origin, and cannot be framed.
import type http from "node:http";
import type { PageHandler } from "./server.ts";
import indexHtml from "../../build/web/index.html.asset" with { type: "text" };
import appJs from "../../build/web/app.js.asset" with { type: "text" };
import appCss from "../../build/web/app.css.asset" with { type: "text" };

export const CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data: blob:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

interface Asset {
  type: string;
  body: Buffer;
}

export interface WebAssets {
  html: string;
  js: string;
  css: string;
}

const EMBEDDED: WebAssets = { html: indexHtml, js: appJs, css: appCss };

/** The page's paths, for the `pages` option of startApiServer. */
export function webPages(assets: WebAssets = EMBEDDED): Record<string, PageHandler> {
  const serve = (a: Asset): PageHandler => (req, res) => send(req, res, a);
  const html = serve({ type: "text/html; charset=utf-8", body: Buffer.from(assets.html) });
  return {
    "/": html,
    "/index.html": html,
    "/app.js": serve({ type: "text/javascript; charset=utf-8", body: Buffer.from(assets.js) }),
    "/app.css": serve({ type: "text/css; charset=utf-8", body: Buffer.from(assets.css) }),
  };
}

function send(req: http.IncomingMessage, res: http.ServerResponse, a: Asset): void {
  res.writeHead(200, {
    "content-type": a.type,
    "content-length": a.body.length,
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    // The bundle changes with every build of the executable: always ask again.
    "cache-control": "no-cache",
  });
  res.end(req.method === "HEAD" ? undefined : a.body);
}
