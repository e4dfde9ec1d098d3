// Detaching a probe waits for an RCU grace period in the kernel (70–110 ms here), one after
// another when done from one thread: 24 probes took over 2 s. Detached from several threads
// at once, the waits overlap. Each worker opens libbpf itself and destroys its share of the
// links; the source is inline so the worker also runs from the compiled executable.
import type { Pointer } from "bun:ffi";
import { libbpf, libc } from "./libbpf.ts";

const WORKER_SOURCE = `
import { dlopen, FFIType } from "bun:ffi";
self.onmessage = (event) => {
  const { soname, links, fds } = event.data;
  const lib = dlopen(soname, { bpf_link__destroy: { args: [FFIType.ptr], returns: FFIType.i32 } });
  const libc = dlopen("libc.so.6", { close: { args: [FFIType.i32], returns: FFIType.i32 } });
  for (const link of links) lib.symbols.bpf_link__destroy(link);
  for (const fd of fds) libc.symbols.close(fd);
  lib.close();
  libc.close();
  postMessage("done");
};
`;

const MAX_WORKERS = 16;
/** How long a stop waits for the workers; links left then go when tapwire exits (the kernel
 * detaches a process's links when their last descriptor closes). */
const DEADLINE_MS = 1200;

/**
 * Destroy `links` (struct bpf_link *) and close `fds` (bare link fds) in parallel; resolves
 * when all are gone, or at the deadline. If a worker cannot start, its share is done on this
 * thread.
 */
export async function destroyLinksInParallel(links: Pointer[], fds: number[], soname: string): Promise<void> {
  const jobs: { link?: number; fd?: number }[] = [...links.map((l) => ({ link: Number(l) })), ...fds.map((fd) => ({ fd }))];
  const n = Math.min(MAX_WORKERS, jobs.length);
  if (n === 0) return;
  const shares: { links: number[]; fds: number[] }[] = Array.from({ length: n }, () => ({ links: [], fds: [] }));
  jobs.forEach((j, i) => (j.link !== undefined ? shares[i % n]!.links.push(j.link) : shares[i % n]!.fds.push(j.fd!)));
  const here = (share: { links: number[]; fds: number[] }) => {
    for (const l of share.links) libbpf().bpf_link__destroy(l as unknown as Pointer);
    for (const fd of share.fds) libc().close(fd);
  };
  const url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "application/javascript" }));
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<void>((resolve) => (timer = setTimeout(resolve, DEADLINE_MS)));
  try {
    await Promise.race([deadline, Promise.all(
      shares.map(
        (share) =>
          new Promise<void>((resolve) => {
            let worker: Worker;
            try {
              worker = new Worker(url);
            } catch {
              here(share);
              resolve();
              return;
            }
            worker.onmessage = () => {
              worker.terminate();
              resolve();
            };
            worker.onerror = () => {
              // Only opening libbpf can fail in a worker, before it touched a link.
              worker.terminate();
              here(share);
              resolve();
            };
            worker.postMessage({ soname, links: share.links, fds: share.fds });
          }),
      ),
    )]);
  } finally {
    clearTimeout(timer);
    URL.revokeObjectURL(url);
  }
}
