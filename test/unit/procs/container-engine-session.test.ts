// The engine session on its own, against a stand-in engine (a DockerClient the test drives):
// what it says and when, how it retries and comes back, and what it hands on from the list,
// the events and the containers asked about.
import { describe, expect, test } from "bun:test";
import { createContainerEngineSession, type ContainerEngineSessionOptions } from "../../../src/procs/container-engine-session.ts";
import { DockerError, type ContainerEvent, type ContainerInfo, type DockerClient } from "../../../src/procs/docker.ts";
import { ID_A, ID_B, ID_C } from "./fake-host.ts";

const SOCKET = "/run/fake-engine.sock";

/** An engine the test switches on and off, with containers and an events stream it feeds. */
function standInEngine() {
  let up = false;
  const containers = new Map<string, ContainerInfo>();
  const calls = { list: 0, inspect: [] as string[], streams: 0 };
  /** The open stream's feed; "end" ends it as an engine would. */
  let feed: ((e: ContainerEvent | "end") => void) | undefined;
  /** An inspect waits on this while set (to see two asks overlap). */
  let hold: Promise<void> | undefined;
  const down = () => new DockerError(SOCKET, "nothing listens on it");
  const client: DockerClient = {
    socket: SOCKET,
    async list() {
      calls.list++;
      if (!up) throw down();
      return [...containers.values()].filter((c) => c.running);
    },
    async inspect(id) {
      calls.inspect.push(id);
      await hold;
      if (!up) throw down();
      return containers.get(id);
    },
    async *events(signal) {
      if (!up) throw down();
      calls.streams++;
      const queue: (ContainerEvent | "end")[] = [];
      let wake: (() => void) | undefined;
      feed = (e) => {
        queue.push(e);
        wake?.();
      };
      const onAbort = () => wake?.();
      signal.addEventListener("abort", onAbort);
      try {
        for (;;) {
          while (queue.length) {
            const e = queue.shift()!;
            if (e === "end") return;
            yield e;
          }
          if (signal.aborted) return;
          await new Promise<void>((resolve) => (wake = resolve));
          wake = undefined;
        }
      } finally {
        signal.removeEventListener("abort", onAbort);
      }
    },
  };
  return {
    client,
    containers,
    calls,
    setUp: (v: boolean) => void (up = v),
    emit: (action: string, id: string) => feed?.({ action, id, name: "", image: "" }),
    endStream: () => feed?.("end"),
    hold: (p: Promise<void> | undefined) => void (hold = p),
  };
}

/** A session on the stand-in, with what it handed on written down. */
function session(engine: ReturnType<typeof standInEngine>, over: Partial<ContainerEngineSessionOptions> = {}) {
  const got = { lists: [] as string[][], containers: [] as string[], stops: [] as string[], lines: [] as string[] };
  const s = createContainerEngineSession({
    socket: SOCKET,
    client: engine.client,
    retryMs: 20,
    log: (l) => void got.lines.push(l),
    onList: (list) => void got.lists.push(list.map((c) => c.id)),
    onContainer: (info) => void got.containers.push(info.id),
    onStop: (id) => void got.stops.push(id),
    ...over,
  });
  return { s, got };
}

const info = (id: string, running = true): ContainerInfo => ({ id, name: id.slice(0, 4), image: "img", pid: 1, running, networkMode: "host", ip: "" });

/** Waits until `f` holds (the session works on timers and streams). */
async function until(what: string, f: () => boolean, ms = 2000) {
  const end = performance.now() + ms;
  while (!f()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(2);
  }
}

describe("container engine session", () => {
  test("no socket: no engine, nothing asked, nothing said", async () => {
    const { s, got } = session(standInEngine(), { socket: "", client: undefined });
    expect(s.status).toEqual({ socket: "", reachable: false, reason: "no engine socket given" });
    await s.start();
    s.ask(ID_A);
    expect(got).toEqual({ lists: [], containers: [], stops: [], lines: [] });
    s.close();
  });

  test("an engine that answers: its list handed on, then its events (a start is inspected, a stop passed on, the rest ignored)", async () => {
    const e = standInEngine();
    e.setUp(true);
    e.containers.set(ID_A, info(ID_A));
    e.containers.set(ID_B, info(ID_B, false));
    const { s, got } = session(e);
    expect(s.status.reason).toBe("not asked yet");
    await s.start();
    expect(s.status).toEqual({ socket: SOCKET, reachable: true, reason: "" });
    expect(got.lists).toEqual([[ID_A]]);
    await until("the events stream", () => e.calls.streams === 1);
    e.containers.set(ID_C, info(ID_C));
    e.emit("start", ID_C);
    e.emit("exec_create", ID_C);
    e.emit("die", ID_A);
    await until("the stop", () => got.stops.length === 1);
    expect(got.containers).toEqual([ID_C]);
    expect(got.stops).toEqual([ID_A]);
    expect(got.lines).toEqual([]);
    s.close();
  });

  test("asking: only while the engine answers, one inspect at a time per container, unknown ones handed on as nothing", async () => {
    const e = standInEngine();
    const { s, got } = session(e, { retryMs: 60_000 });
    await s.start();
    s.ask(ID_A);
    expect(e.calls.inspect).toEqual([]);
    s.close();

    const e2 = standInEngine();
    e2.setUp(true);
    e2.containers.set(ID_A, info(ID_A));
    const { s: s2, got: got2 } = session(e2);
    await s2.start();
    let release!: () => void;
    e2.hold(new Promise<void>((r) => (release = r)));
    s2.ask(ID_A);
    s2.ask(ID_A);
    s2.ask(ID_B); // the engine does not know it
    release();
    e2.hold(undefined);
    await until("the answers", () => e2.calls.inspect.length === 2 && got2.containers.length === 1);
    await Bun.sleep(10);
    expect(e2.calls.inspect).toEqual([ID_A, ID_B]);
    expect(got2.containers).toEqual([ID_A]);
    expect(got.containers).toEqual([]);
    s2.close();
  });

  test("no engine at start: said once, retried quietly, and when it answers, said again and its list handed on", async () => {
    const e = standInEngine();
    const { s, got } = session(e);
    await s.start();
    expect(got.lines).toEqual([`tapwire: no container engine answers at ${SOCKET} (nothing listens on it); containers are known by id only (--docker-socket PATH)`]);
    expect(s.status).toEqual({ socket: SOCKET, reachable: false, reason: "nothing listens on it" });
    await until("a few retries", () => e.calls.list >= 4);
    expect(got.lines.length).toBe(1);
    e.containers.set(ID_A, info(ID_A));
    e.setUp(true);
    await until("the list", () => got.lists.length === 1);
    expect(got.lists).toEqual([[ID_A]]);
    expect(got.lines[1]).toBe(`tapwire: the container engine at ${SOCKET} answers again`);
    expect(s.status.reachable).toBe(true);
    s.close();
  });

  test("the engine going away (its events stream ends): said once, then back with a new list and a new stream", async () => {
    const e = standInEngine();
    e.setUp(true);
    e.containers.set(ID_A, info(ID_A));
    const { s, got } = session(e);
    await s.start();
    await until("the events stream", () => e.calls.streams === 1);
    e.setUp(false);
    e.endStream();
    await until("the loss", () => !s.status.reachable);
    expect(s.status.reason).toBe("the events stream ended");
    await until("a retry or two", () => e.calls.list >= 3);
    expect(got.lines).toEqual(["tapwire: the container engine went away (the events stream ended); flows keep their container ids, names return when it does"]);
    e.setUp(true);
    await until("the list again", () => got.lists.length === 2);
    await until("a new stream", () => e.calls.streams === 2);
    expect(got.lines[1]).toBe(`tapwire: the container engine at ${SOCKET} answers again`);
    // The new stream is the one read.
    e.emit("stop", ID_A);
    await until("the stop", () => got.stops.length === 1);
    s.close();
  });

  test("an ask the engine fails is a loss like any other; closed, the session tries no more", async () => {
    const e = standInEngine();
    e.setUp(true);
    const { s, got } = session(e);
    await s.start();
    e.setUp(false);
    s.ask(ID_A);
    await until("the loss", () => !s.status.reachable);
    expect(got.lines).toEqual(["tapwire: the container engine went away (nothing listens on it); flows keep their container ids, names return when it does"]);
    s.close();
    const lists = e.calls.list;
    await Bun.sleep(80);
    expect(e.calls.list).toBe(lists);
  });
});
