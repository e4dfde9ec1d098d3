// Loads tapwire's BPF object and owns everything libbpf hands back: the object, the links of
// its attached programs and the ring buffer mapping. One straight line — check, open,
// configure, load, attach, map the ring — and one clean-up path, safe to call twice.
import { ptr, toArrayBuffer, type Pointer } from "bun:ffi";
import { libbpf, libc, errno, strerror, takeLibbpfMessages, withSignalsBlocked, SetupError } from "./libbpf.ts";
import { createRingReader, type RingReader } from "./ring-reader.ts";
import { checkSystem, ensureTracefs } from "./system.ts";
import * as L from "./gen/layout.ts";

export interface LoadOptions {
  /** The compiled BPF object (embedded in the executable). */
  object: Uint8Array;
  /** Ring buffer size in bytes: a power of two, at least one page. */
  ringBytes: number;
  /** Never traced (tapwire itself). */
  selfPid: number;
  /** Which programs to attach; all when absent. */
  programFilter?: (name: string) => boolean;
  /** Filters in force from the first event on. */
  filters?: Filters;
}

export interface Filters {
  pids?: number[];
  comms?: string[];
  ports?: number[];
}

export type Counters = Record<string, number>;

export interface LoadedProbes {
  readonly ring: RingReader;
  /** Names of the attached programs. */
  readonly attached: string[];
  /** The kernel side's counters (enum tw_counter), summed over CPUs, by name. */
  counters(): Counters;
  setFilters(filters: Filters): void;
  /** Forget a connection in the kernel's table (its process exited without closing it). */
  forgetConnection(pid: number, fd: number): void;
  close(): void;
}

const COUNTER_NAMES: [string, number][] = Object.entries(L)
  .filter(([k, v]) => k.startsWith("TW_CNT_") && k !== "TW_CNT_MAX" && typeof v === "number")
  .map(([k, v]) => [k.slice("TW_CNT_".length).toLowerCase(), v as number]);

function fail(what: string, err: number): never {
  const messages = takeLibbpfMessages();
  // The verifier's last lines or libbpf's own reason say more than the errno does.
  const detail = messages.filter((m) => !m.startsWith(";")).slice(-6).join(" | ");
  throw new SetupError(`${what}: ${strerror(err)}${detail ? ` (libbpf: ${detail})` : ""}`);
}

export function loadProbes(opts: LoadOptions): LoadedProbes {
  checkSystem();
  ensureTracefs();
  const lb = libbpf();
  takeLibbpfMessages();

  const objectBytes = opts.object; // kept alive while libbpf reads it
  const obj = lb.bpf_object__open_mem(ptr(objectBytes), objectBytes.length, null);
  if (!obj) fail("cannot open the BPF object", errno());

  const links: Pointer[] = [];
  let ring: RingReader | undefined;
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    ring?.close();
    for (const link of links.splice(0)) lb.bpf_link__destroy(link);
    lb.bpf_object__close(obj!);
  };

  try {
    const map = (name: string) => {
      const m = lb.bpf_object__find_map_by_name(obj!, Buffer.from(`${name}\0`));
      if (!m) throw new SetupError(`the BPF object has no map ${name}`);
      return m;
    };
    const cpus = lb.libbpf_num_possible_cpus();
    if (cpus <= 0) fail("cannot count the CPUs", -cpus);
    let err = lb.bpf_map__set_max_entries(map("scratch"), cpus);
    if (err) fail("cannot size the scratch map", -err);
    err = lb.bpf_map__set_max_entries(map("events"), opts.ringBytes);
    if (err) fail(`cannot size the ring buffer to ${opts.ringBytes} bytes`, -err);

    // struct tw_config lives in .rodata: written between open and load.
    const sizeBox = new BigUint64Array(1);
    const rodata = lb.bpf_map__initial_value(map(".rodata"), ptr(sizeBox));
    if (!rodata) throw new SetupError("the BPF object's .rodata cannot be written");
    const config = new DataView(toArrayBuffer(rodata, L.RODATA_TW_CONFIG_OFFSET, L.tw_config.size));
    config.setUint32(L.tw_config.self_tgid, opts.selfPid, true);

    if (opts.programFilter) {
      for (let p = lb.bpf_object__next_program(obj!, null); p; p = lb.bpf_object__next_program(obj!, p)) {
        if (!opts.programFilter(String(lb.bpf_program__name(p)))) lb.bpf_program__set_autoload(p, false);
      }
    }

    err = withSignalsBlocked(() => lb.bpf_object__load(obj!));
    if (err) fail("the kernel refused tapwire's BPF programs", -err);

    const fd = (name: string) => lb.bpf_map__fd(map(name));
    const settingsFd = fd("settings");
    const countersFd = fd("counters");
    const pidsFd = fd("filter_pids");
    const commsFd = fd("filter_comms");
    const portsFd = fd("filter_ports");
    const connsFd = fd("conns");
    ring = createRingReader(fd("events"), opts.ringBytes);

    const zeroKey = new Uint32Array(1);
    const writeSettings = (f: Filters) => {
      const s = new DataView(new ArrayBuffer(L.tw_settings.size));
      s.setUint32(L.tw_settings.filter_pids, f.pids?.length ? 1 : 0, true);
      s.setUint32(L.tw_settings.filter_comms, f.comms?.length ? 1 : 0, true);
      s.setUint32(L.tw_settings.filter_ports, f.ports?.length ? 1 : 0, true);
      s.setUint32(L.tw_settings.chunk_limit, L.TW_MAX_CHUNKS, true);
      const e = lb.bpf_map_update_elem(settingsFd, ptr(zeroKey), ptr(new Uint8Array(s.buffer)), 0);
      if (e) fail("cannot write the settings map", -e);
    };
    const replaceSet = (mapFd: number, keys: Uint8Array[]) => {
      // Delete what is there, then add: the filter flag is written last, after the set is whole.
      const keySize = keys[0]?.length ?? 0;
      const cur = new Uint8Array(Math.max(keySize, 16));
      const next = new Uint8Array(cur.length);
      const existing: Uint8Array[] = [];
      let prev: Uint8Array | null = null;
      while (lb.bpf_map_get_next_key(mapFd, prev ? ptr(prev) : null, ptr(next)) === 0) {
        existing.push(next.slice());
        prev = existing[existing.length - 1];
      }
      for (const k of existing) lb.bpf_map_delete_elem(mapFd, ptr(k));
      const one = new Uint8Array([1]);
      for (const k of keys) {
        const e = lb.bpf_map_update_elem(mapFd, ptr(k), ptr(one), 0);
        if (e) fail("cannot write a filter map", -e);
      }
    };
    function setFilters(f: Filters) {
      replaceSet(pidsFd, (f.pids ?? []).map((p) => new Uint8Array(new Uint32Array([p]).buffer)));
      replaceSet(commsFd, (f.comms ?? []).map((c) => {
        const k = new Uint8Array(L.TW_COMM_LEN);
        k.set(Buffer.from(c, "latin1").subarray(0, L.TW_COMM_LEN - 1));
        return k;
      }));
      replaceSet(portsFd, (f.ports ?? []).map((p) => new Uint8Array(new Uint16Array([p]).buffer)));
      writeSettings(f);
    }
    const possibleCpus = cpus;
    setFilters(opts.filters ?? {});

    // Attached last, so the first event already sees the filters.
    const attached: string[] = [];
    for (let p = lb.bpf_object__next_program(obj!, null); p; p = lb.bpf_object__next_program(obj!, p)) {
      const name = String(lb.bpf_program__name(p));
      if (opts.programFilter && !opts.programFilter(name)) continue;
      const link = lb.bpf_program__attach(p);
      if (!link) fail(`cannot attach ${name} (${String(lb.bpf_program__section_name(p))})`, errno());
      links.push(link as Pointer);
      attached.push(name);
    }


    const probes: LoadedProbes = {
      ring,
      attached,
      counters() {
        const out: Counters = {};
        const key = new Uint32Array(1);
        const values = new BigUint64Array(possibleCpus);
        for (const [name, slot] of COUNTER_NAMES) {
          key[0] = slot;
          let sum = 0;
          if (lb.bpf_map_lookup_elem(countersFd, ptr(key), ptr(values)) === 0) for (const v of values) sum += Number(v);
          out[name] = sum;
        }
        return out;
      },
      setFilters,
      forgetConnection(pid, fdNum) {
        const key = new Uint32Array([pid, fdNum]);
        lb.bpf_map_delete_elem(connsFd, ptr(key));
      },
      close,
    };
    return probes;
  } catch (e) {
    close();
    throw e;
  }
}

export { libc };
