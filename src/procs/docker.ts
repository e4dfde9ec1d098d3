// A Docker Engine API client over its unix socket (Docker, or podman's compatible
// service): containers listed and inspected (pid, image, name, network mode, IP), and the
// events stream for containers that start and stop later. Bun's fetch speaks HTTP over a
// unix socket directly.

export interface ContainerInfo {
  id: string;
  /** Without the leading "/". */
  name: string;
  image: string;
  /** The main process, 0 when not running. */
  pid: number;
  running: boolean;
  networkMode: string;
  ip: string;
}

export interface ContainerEvent {
  action: string;
  id: string;
  name: string;
  image: string;
}

/** The engine could not be asked; `reason` says why, the message also names the socket. */
export class DockerError extends Error {
  constructor(
    socket: string,
    readonly reason: string,
  ) {
    super(`${socket}: ${reason}`);
  }
}

const REQUEST_TIMEOUT_MS = 3000;

/** The socket: the one given ("" for none), else DOCKER_HOST (unix://PATH), else /var/run/docker.sock. */
export function dockerSocketPath(explicit?: string): string {
  if (explicit !== undefined) return explicit.replace(/^unix:\/\//, "");
  const env = process.env.DOCKER_HOST;
  if (env?.startsWith("unix://")) return env.slice("unix://".length);
  return "/var/run/docker.sock";
}

export interface DockerClient {
  readonly socket: string;
  list(): Promise<ContainerInfo[]>;
  inspect(id: string): Promise<ContainerInfo | undefined>;
  /** Container events until `signal` aborts or the engine goes away. */
  events(signal: AbortSignal): AsyncIterable<ContainerEvent>;
}

export function createDockerClient(socket = dockerSocketPath()): DockerClient {
  async function get(path: string, signal?: AbortSignal): Promise<Response> {
    let res: Response;
    try {
      // A request for a list or an inspect that hangs is an engine that is not answering.
      // Unversioned paths: the engine answers in its own current version (a fixed old one is
      // refused by newer Docker engines; the fields read here are in every version).
      res = await fetch(`http://docker${path}`, { unix: socket, signal: signal ?? AbortSignal.timeout(REQUEST_TIMEOUT_MS) } as RequestInit);
    } catch (e) {
      throw new DockerError(socket, reason(e as NodeJS.ErrnoException));
    }
    if (!res.ok && res.status !== 404) throw new DockerError(socket, `GET ${path}: HTTP ${res.status} ${(await res.text()).trim().slice(0, 200)}`);
    return res;
  }

  async function inspect(id: string): Promise<ContainerInfo | undefined> {
    const res = await get(`/containers/${encodeURIComponent(id)}/json`);
    if (res.status === 404) return undefined;
    const j = (await res.json()) as {
      Id: string;
      Name?: string;
      Config?: { Image?: string };
      Image?: string;
      State?: { Pid?: number; Running?: boolean };
      HostConfig?: { NetworkMode?: string };
      NetworkSettings?: { IPAddress?: string; Networks?: Record<string, { IPAddress?: string }> };
    };
    const nets = Object.values(j.NetworkSettings?.Networks ?? {});
    return {
      id: j.Id,
      name: (j.Name ?? "").replace(/^\//, ""),
      image: j.Config?.Image ?? j.Image ?? "",
      pid: j.State?.Pid ?? 0,
      running: !!j.State?.Running,
      networkMode: j.HostConfig?.NetworkMode ?? "",
      ip: j.NetworkSettings?.IPAddress || nets.find((n) => n.IPAddress)?.IPAddress || "",
    };
  }

  return {
    socket,
    inspect,
    async list() {
      const items = (await (await get("/containers/json")).json()) as { Id: string }[];
      // In parallel: a host with many containers is listed in one round trip's time.
      const infos = await Promise.all(items.map((item) => inspect(item.Id)));
      return infos.filter((i): i is ContainerInfo => i !== undefined);
    },
    async *events(signal) {
      const res = await get(`/events?filters=${encodeURIComponent(JSON.stringify({ type: ["container"] }))}`, signal);
      if (!res.body) return;
      const decoder = new TextDecoder();
      let pending = "";
      try {
        for await (const chunk of res.body) {
          pending += decoder.decode(chunk, { stream: true });
          let nl: number;
          while ((nl = pending.indexOf("\n")) >= 0) {
            const line = pending.slice(0, nl).trim();
            pending = pending.slice(nl + 1);
            if (!line) continue;
            let e: { Type?: string; Action?: string; status?: string; Actor?: { ID?: string; Attributes?: Record<string, string> }; id?: string };
            try {
              e = JSON.parse(line);
            } catch {
              continue; // not an event: skipped
            }
            if (e.Type && e.Type !== "container") continue;
            const attrs = e.Actor?.Attributes ?? {};
            yield { action: e.Action ?? e.status ?? "", id: e.Actor?.ID ?? e.id ?? "", name: attrs.name ?? "", image: attrs.image ?? "" };
          }
        }
      } catch (e) {
        if (signal.aborted) return;
        throw new DockerError(socket, `the events stream ended: ${(e as Error).message}`);
      }
    },
  };
}

/** A connection failure in words (fetch's own messages speak of URLs and ports). */
function reason(e: NodeJS.ErrnoException): string {
  switch (e.code) {
    case "ENOENT":
    case "FailedToOpenSocket":
      return "no such socket";
    case "ECONNREFUSED":
      return "nothing listens on it";
    case "EACCES":
      return "permission denied";
    default:
      return e.name === "TimeoutError" ? "no answer within 3 s" : (e.code ?? e.message);
  }
}
