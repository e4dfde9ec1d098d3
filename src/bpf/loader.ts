// Loads tapwire's BPF object and owns everything libbpf hands back: the object, the links of
// its attached programs and the ring buffer mapping. One straight line — check, open,
// configure, load, attach, map the ring — and one clean-up path, safe to call twice.
import { ptr, toArrayBuffer, type Pointer } from "bun:ffi";
import { libbpf, libbpfInfo, libc, errno, strerror, takeLibbpfMessages, withSignalsBlocked, SetupError, bpfSyscall, BPF_LINK_CREATE, BPF_TRACE_UPROBE_MULTI } from "./libbpf.ts";
import { createRingReader, type RingReader } from "./ring-reader.ts";
import { destroyLinksInParallel } from "./link-closer.ts";
import { checkSystem, ensureTracefs } from "./system.ts";
import { uprobeMultiSupported } from "./features.ts";
import * as L from "./gen/layout.ts";
import { endpointKeys, type SelfListener } from "./endpoints.ts";

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
  /** tapwire's own listening sockets: local connections to them are its clients, not traced. */
  selfListeners?: SelfListener[];
}


export interface Filters {
  pids?: number[];
  comms?: string[];
  ports?: number[];
  /** Cgroup v2 ids of chosen containers; undefined: no container filter. An empty list is
   * a filter too (containers were chosen, none of them runs yet): nothing passes it. */
  cgroups?: number[];
}

export type Counters = Record<string, number>;

export interface LoadedProbes {
  readonly ring: RingReader;
  /** Names of the attached programs. */
  readonly attached: string[];
  /** The kernel side's counters (enum tw_counter), summed over CPUs, by name; then the ring
   * reader's: drop_ring_bad_records and drop_ring_skipped_bytes (see RingStats). */
  counters(): Counters;
  setFilters(filters: Filters): void;
  /** Forget a connection in the kernel's table (its process exited without closing it). */
  forgetConnection(pid: number, fd: number): void;
  /** The LD_LIBRARY_PATH of the process's last exec, if it had one (map exec_env). */
  execLibraryPath(pid: number): string | undefined;
  /** Tell the Go probes about a Go binary (map go_bins), before attaching them to it. */
  setGoBinary(id: number, config: GoBinaryConfig): void;
  /** Whether uprobes are attached with multi-uprobe links (needed by the Go probes); the
   * kernel was asked (features.ts). */
  readonly uprobeMulti: boolean;
  /** Attach a uprobe program (SEC("uprobe"/"uretprobe")) to places in the file at `path`. */
  attachUprobe(u: UprobeSpec): UprobeLink;
  /** Detach everything (in parallel: see link-closer.ts) and free the object. */
  close(): Promise<void>;
}

export interface UprobeSpec {
  program: string;
  path: string;
  /** File offsets of the functions, each with the cookie the program reads (bpf_get_attach_cookie). */
  targets: { offset: number; cookie: number }[];
  retprobe: boolean;
}

/** struct tw_go_config. */
export interface GoBinaryConfig {
  tcpConnItab: number;
  readVaddr: number;
  writeVaddr: number;
  tlsConnConn: number;
  tcpConnFd: number;
  netFdSysfd: number;
}

export interface UprobeLink {
  detach(): void;
}

const BPF_F_UPROBE_MULTI_RETURN = 1;

/** Holds buffers whose raw pointers were passed to C until this call. */
function keepAlive(..._buffers: unknown[]): void {}

/** Programs attached on demand, to files user space chooses, not at load. */
const isUprobe = (section: string) => section.startsWith("uprobe") || section.startsWith("uretprobe");

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
  /** Links that are bare fds (multi-uprobe links made with the bpf syscall). */
  const linkFds: number[] = [];
  let ring: RingReader | undefined;
  let closed = false;
  let closing: Promise<void> | undefined;
  /** `parallel`: detach from worker threads (see link-closer.ts); else here, one by one. */
  const close = (parallel: boolean) => {
    if (closing) return closing;
    closed = true;
    ring?.close();
    const all = links.splice(0);
    const fds = linkFds.splice(0);
    const destroyHere = (l: Pointer) => void lb.bpf_link__destroy(l);
    const closeHere = (fd: number) => void libc().close(fd);
    closing = (
      parallel
        ? destroyLinksInParallel(all, fds, libbpfInfo().soname)
        : Promise.resolve().then(() => (all.forEach(destroyHere), fds.forEach(closeHere)))
    ).then(() => {
      lb.bpf_object__close(obj!);
    });
    return closing;
  };

  try {
    // Asked of the kernel before the load: uprobe programs made for multi-uprobe links are
    // loaded with that attach type.
    const multi = uprobeMultiSupported();
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

    for (let p = lb.bpf_object__next_program(obj!, null); p; p = lb.bpf_object__next_program(obj!, p)) {
      if (opts.programFilter && !opts.programFilter(String(lb.bpf_program__name(p)))) lb.bpf_program__set_autoload(p, false);
      // Multi-uprobe links need their programs loaded for them.
      else if (multi && isUprobe(String(lb.bpf_program__section_name(p)))) {
        lb.bpf_program__set_expected_attach_type(p, BPF_TRACE_UPROBE_MULTI);
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
    const cgroupsFd = fd("filter_cgroups");
    const connsFd = fd("conns");
    const goBinsFd = fd("go_bins");
    const execEnvFd = fd("exec_env");
    const selfListenersFd = fd("self_listeners");
    for (const l of opts.selfListeners ?? []) {
      for (const key of endpointKeys(l)) {
        const e = lb.bpf_map_update_elem(selfListenersFd, ptr(key), ptr(new Uint8Array([1])), 0);
        if (e) fail("cannot write the self_listeners map", -e);
      }
    }
    ring = createRingReader(fd("events"), opts.ringBytes);
    const ringStats = ring.stats;

    const zeroKey = new Uint32Array(1);
    type Flags = { pids: boolean; comms: boolean; ports: boolean; cgroups: boolean };
    const flagsOf = (f: Filters): Flags => ({ pids: !!f.pids?.length, comms: !!f.comms?.length, ports: !!f.ports?.length, cgroups: !!f.cgroups });
    let flags: Flags = { pids: false, comms: false, ports: false, cgroups: false };
    const writeSettings = (next: Flags) => {
      const s = new DataView(new ArrayBuffer(L.tw_settings.size));
      s.setUint32(L.tw_settings.filter_pids, next.pids ? 1 : 0, true);
      s.setUint32(L.tw_settings.filter_comms, next.comms ? 1 : 0, true);
      s.setUint32(L.tw_settings.filter_ports, next.ports ? 1 : 0, true);
      s.setUint32(L.tw_settings.filter_cgroups, next.cgroups ? 1 : 0, true);
      s.setUint32(L.tw_settings.chunk_limit, L.TW_MAX_CHUNKS, true);
      const e = lb.bpf_map_update_elem(settingsFd, ptr(zeroKey), ptr(new Uint8Array(s.buffer)), 0);
      if (e) fail("cannot write the settings map", -e);
      flags = next;
    };
    const replaceSet = (mapFd: number, keySize: number, keys: Uint8Array[]) => {
      // Keys that stay are left alone, new ones added before old ones go: a container
      // filter being widened never drops a container that was already wanted.
      const hex = (k: Uint8Array) => Buffer.from(k).toString("hex");
      const wanted = new Set(keys.map(hex));
      const next = new Uint8Array(keySize);
      const existing = new Map<string, Uint8Array>();
      let prev: Uint8Array | null = null;
      while (lb.bpf_map_get_next_key(mapFd, prev ? ptr(prev) : null, ptr(next)) === 0) {
        prev = next.slice();
        existing.set(hex(prev), prev);
      }
      const one = new Uint8Array([1]);
      for (const k of keys) {
        if (existing.has(hex(k))) continue;
        const e = lb.bpf_map_update_elem(mapFd, ptr(k), ptr(one), 0);
        if (e) fail("cannot write a filter map", -e);
      }
      for (const [h, k] of existing) if (!wanted.has(h)) lb.bpf_map_delete_elem(mapFd, ptr(k));
    };
    function setFilters(f: Filters) {
      // A filter being turned off is off before its set changes, one being turned on is on
      // only once its set is whole: no event is turned away by a half-written filter.
      const next = flagsOf(f);
      writeSettings({ pids: flags.pids && next.pids, comms: flags.comms && next.comms, ports: flags.ports && next.ports, cgroups: flags.cgroups && next.cgroups });
      replaceSet(pidsFd, 4, (f.pids ?? []).map((p) => new Uint8Array(new Uint32Array([p]).buffer)));
      replaceSet(commsFd, L.TW_COMM_LEN, (f.comms ?? []).map((c) => {
        const k = new Uint8Array(L.TW_COMM_LEN);
        k.set(Buffer.from(c, "latin1").subarray(0, L.TW_COMM_LEN - 1));
        return k;
      }));
      replaceSet(portsFd, 2, (f.ports ?? []).map((p) => new Uint8Array(new Uint16Array([p]).buffer)));
      replaceSet(cgroupsFd, 8, (f.cgroups ?? []).map((id) => new Uint8Array(new BigUint64Array([BigInt(id)]).buffer)));
      writeSettings(next);
    }
    const possibleCpus = cpus;
    setFilters(opts.filters ?? {});

    // Attached last, so the first event already sees the filters.
    const attached: string[] = [];
    const uprobePrograms = new Map<string, Pointer>();
    for (let p = lb.bpf_object__next_program(obj!, null); p; p = lb.bpf_object__next_program(obj!, p)) {
      const name = String(lb.bpf_program__name(p));
      if (opts.programFilter && !opts.programFilter(name)) continue;
      if (isUprobe(String(lb.bpf_program__section_name(p)))) {
        uprobePrograms.set(name, p as Pointer);
        continue;
      }
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
        out.drop_ring_bad_records = ringStats.badRecords;
        out.drop_ring_skipped_bytes = ringStats.skippedBytes;
        return out;
      },
      setFilters,
      forgetConnection(pid, fdNum) {
        const key = new Uint32Array([pid, fdNum]);
        lb.bpf_map_delete_elem(connsFd, ptr(key));
      },
      uprobeMulti: multi,
      execLibraryPath(pid) {
        const key = new Uint32Array([pid]);
        const value = new Uint8Array(L.tw_exec_env.size);
        if (lb.bpf_map_lookup_elem(execEnvFd, ptr(key), ptr(value)) !== 0) return undefined;
        const len = new DataView(value.buffer).getInt32(L.tw_exec_env.len, true);
        if (len <= 1) return undefined;
        const at = L.tw_exec_env.ld_library_path;
        return Buffer.from(value.subarray(at, at + Math.min(len - 1, L.TW_ENV_VALUE_LEN - 1))).toString("latin1");
      },
      setGoBinary(id, cfg) {
        const G = L.tw_go_config;
        const v = new DataView(new ArrayBuffer(G.size));
        v.setBigUint64(G.tcp_conn_itab, BigInt(cfg.tcpConnItab), true);
        v.setBigUint64(G.read_vaddr, BigInt(cfg.readVaddr), true);
        v.setBigUint64(G.write_vaddr, BigInt(cfg.writeVaddr), true);
        v.setUint32(G.tls_conn_conn, cfg.tlsConnConn, true);
        v.setUint32(G.tcp_conn_fd, cfg.tcpConnFd, true);
        v.setUint32(G.netfd_sysfd, cfg.netFdSysfd, true);
        const key = new Uint32Array([id]);
        const e = lb.bpf_map_update_elem(goBinsFd, ptr(key), ptr(new Uint8Array(v.buffer)), 0);
        if (e) fail("cannot write the go_bins map", -e);
      },
      attachUprobe(u) {
        const prog = uprobePrograms.get(u.program);
        if (!prog) throw new SetupError(`the BPF object has no uprobe program ${u.program}`);
        if (multi) {
          const fd = attachUprobeMulti(lb.bpf_program__fd(prog), u);
          linkFds.push(fd);
          return {
            detach() {
              const i = linkFds.indexOf(fd);
              if (i < 0 || closed) return;
              linkFds.splice(i, 1);
              libc().close(fd);
            },
          };
        }
        const own: Pointer[] = u.targets.map((t) => attachUprobeOne(prog, u, t.offset, t.cookie));
        links.push(...own);
        return {
          detach() {
            for (const link of own) {
              const i = links.indexOf(link);
              if (i < 0 || closed) continue;
              links.splice(i, 1);
              lb.bpf_link__destroy(link);
            }
          },
        };
      },
      close: () => close(true),
    };
    return probes;
  } catch (e) {
    void close(false); // a failed load has few links, if any: cleaned up before the throw
    throw e;
  }
}

export { libc };

/** One uprobe (or uretprobe) by libbpf: the way for kernels before 6.6. */
function attachUprobeOne(prog: Pointer, u: UprobeSpec, offset: number, cookie: number): Pointer {
  // struct bpf_uprobe_opts (libbpf 1.1): sz, ref_ctr_offset, bpf_cookie, retprobe, func_name.
  const o = new DataView(new ArrayBuffer(40));
  o.setBigUint64(0, 40n, true);
  o.setBigUint64(16, BigInt(cookie), true);
  o.setUint8(24, u.retprobe ? 1 : 0);
  const optsBytes = new Uint8Array(o.buffer);
  takeLibbpfMessages();
  const link = libbpf().bpf_program__attach_uprobe_opts(prog, -1, Buffer.from(`${u.path}\0`), offset, ptr(optsBytes));
  const err = errno();
  keepAlive(optsBytes);
  if (!link) fail(`cannot attach ${u.program} at offset ${offset} of ${u.path}`, err);
  return link as Pointer;
}

/** A multi-uprobe link by the bpf syscall (libbpf 1.1 predates it); returns its fd. */
function attachUprobeMulti(progFd: number, u: UprobeSpec): number {
  const n = u.targets.length;
  const path = Buffer.from(`${u.path}\0`);
  const offsets = new BigUint64Array(u.targets.map((t) => BigInt(t.offset)));
  const cookies = new BigUint64Array(u.targets.map((t) => BigInt(t.cookie)));
  // union bpf_attr, link_create.uprobe_multi: prog_fd, target_fd, attach_type, flags, then
  // path, offsets, ref_ctr_offsets, cookies, cnt, flags, pid.
  const attr = new DataView(new ArrayBuffer(128));
  attr.setUint32(0, progFd, true);
  attr.setUint32(8, BPF_TRACE_UPROBE_MULTI, true);
  attr.setBigUint64(16, BigInt(ptr(path)), true);
  attr.setBigUint64(24, BigInt(ptr(offsets)), true);
  attr.setBigUint64(40, BigInt(ptr(cookies)), true);
  attr.setUint32(48, n, true);
  attr.setUint32(52, u.retprobe ? BPF_F_UPROBE_MULTI_RETURN : 0, true);
  const attrBytes = new Uint8Array(attr.buffer);
  const r = bpfSyscall(BPF_LINK_CREATE, attrBytes);
  keepAlive(path, offsets, cookies, attrBytes);
  if (r.result < 0) fail(`cannot attach ${u.program} to ${n} places in ${u.path}`, r.errno);
  return r.result;
}
