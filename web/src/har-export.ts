// "Export HAR": the agent's GET /har with the filter in force, saved as a file by the browser.
import { authHeaders } from "./api.ts";

export type HarResult = { ok: true; bytes: number } | { ok: false; status: number; message: string };

export async function exportHar(expression: string): Promise<HarResult> {
  const res = await fetch(`/har?filter=${encodeURIComponent(expression)}`, { headers: authHeaders() });
  if (!res.ok) return { ok: false, status: res.status, message: (await res.text()).trim() || res.statusText };
  const blob = await res.blob();
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = `tapwire-${new Date().toISOString().replace(/[:.]/g, "-")}.har`;
  document.body.append(a);
  a.click();
  a.remove();
  // The download has taken the blob by the next task; the URL can go.
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
  return { ok: true, bytes: blob.size };
}
