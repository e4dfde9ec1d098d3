// tapwire's session with the container engine (the Docker Engine API, or podman's): the list
// of running containers each time the engine answers, the events stream for containers that
// start and stop later, and single containers asked about. An engine is optional and may come
// and go — not there at start, restarted, its socket replaced — so the session keeps its state
// in words (EngineStatus), says a change of it once, and tries again quietly until it answers;
// capture never waits for it. What the engine says is handed on; nothing is kept here.
import { createDockerClient, DockerError, type ContainerInfo, type DockerClient } from "./docker.ts";

export interface EngineStatus {
  socket: string;
  reachable: boolean;
  /** Why it is not reachable, "" when it is. */
  reason: string;
}

export interface ContainerEngineSession {
  /** The engine's state, kept up to date in place. */
  readonly status: EngineStatus;
  /** Ask about a container when the engine answers now (once at a time per container); the
   * answer comes through onContainer. */
  ask(id: string): void;
  /** List the running containers and follow the events; on failure, said once and retried. */
  start(): Promise<void>;
  close(): void;
}

export interface ContainerEngineSessionOptions {
  /** The engine's socket; "" for no engine. */
  socket: string;
  /** How often to try again after the engine went away or was not there. */
  retryMs?: number;
  /** One line per change of the engine's state (unreachable, back). */
  log?(line: string): void;
  /** The engine's running containers, each time it answers (at start, and when it is back). */
  onList(list: ContainerInfo[]): void;
  /** One container as the engine describes it now (asked about, or started). */
  onContainer(info: ContainerInfo): void;
  /** The events say a container stopped (died, was stopped, killed, removed). */
  onStop(id: string): void;
  /** The engine's client; by default one for `socket` (none when it is ""). */
  client?: DockerClient;
}

const START_ACTIONS = new Set(["start", "restart", "unpause"]);
const STOP_ACTIONS = new Set(["die", "stop", "kill", "remove", "destroy"]);

export function createContainerEngineSession(opts: ContainerEngineSessionOptions): ContainerEngineSession {
  const retryMs = opts.retryMs ?? 2000;
  const log = opts.log ?? (() => {});
  const client: DockerClient | undefined = opts.client ?? (opts.socket ? createDockerClient(opts.socket) : undefined);
  const status: EngineStatus = { socket: opts.socket, reachable: false, reason: client ? "not asked yet" : "no engine socket given" };
  const inspecting = new Set<string>();
  let closed = false;
  const abort = new AbortController();
  /** The events stream being read; a new one replaces it (never two at once). */
  let following: AbortController | undefined;
  let retryTimer: ReturnType<typeof setTimeout> | undefined;

  async function inspect(id: string) {
    if (!client || inspecting.has(id)) return;
    inspecting.add(id);
    try {
      const info = await client.inspect(id);
      if (info && !closed) opts.onContainer(info);
    } catch (e) {
      if (e instanceof DockerError) lost(e.reason);
    } finally {
      inspecting.delete(id);
    }
  }

  function lost(reason: string) {
    if (status.reachable) log(`tapwire: the container engine went away (${reason}); flows keep their container ids, names return when it does`);
    status.reachable = false;
    status.reason = reason;
    following?.abort();
    following = undefined;
    scheduleRetry();
  }

  function scheduleRetry() {
    if (closed || retryTimer) return;
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      void connect(false);
    }, retryMs);
  }

  async function connect(first: boolean) {
    if (!client || closed) return;
    // The events stream first, then the list: a container that stops in between is not
    // left listed as running.
    const stream = new AbortController();
    following?.abort();
    following = stream;
    const events = follow(stream.signal);
    let list: ContainerInfo[];
    try {
      list = await client.list();
    } catch (e) {
      stream.abort();
      if (following === stream) following = undefined;
      const reason = e instanceof DockerError ? e.reason : String(e);
      if (first) log(`tapwire: no container engine answers at ${opts.socket} (${reason}); containers are known by id only (--docker-socket PATH)`);
      status.reason = reason;
      scheduleRetry();
      return;
    }
    if (closed) return;
    if (!first && !status.reachable) log(`tapwire: the container engine at ${opts.socket} answers again`);
    status.reachable = true;
    status.reason = "";
    opts.onList(list);
    void events; // read until it ends or is replaced
  }

  async function follow(signal: AbortSignal) {
    if (!client) return;
    try {
      for await (const ev of client.events(AbortSignal.any([abort.signal, signal]))) {
        if (START_ACTIONS.has(ev.action)) await inspect(ev.id);
        else if (STOP_ACTIONS.has(ev.action)) opts.onStop(ev.id);
      }
      if (!closed && !signal.aborted) lost("the events stream ended");
    } catch (e) {
      if (!closed && !signal.aborted) lost(e instanceof DockerError ? e.reason : e instanceof Error ? e.message : String(e));
    }
  }

  return {
    status,
    ask(id) {
      if (client && status.reachable) void inspect(id);
    },
    async start() {
      await connect(true).catch(() => {});
    },
    close() {
      closed = true;
      abort.abort();
      if (retryTimer) clearTimeout(retryTimer);
    },
  };
}
