// The bounded stdout writer on real descriptors: a regular file (written at once), a pipe
// (written asynchronously) whose reader reads, stalls or goes away.
import { afterAll, describe, expect, test } from "bun:test";
import { closeSync, constants, mkdtempSync, openSync, readFileSync, readSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { createOutputWriter } from "../../../src/sinks/output.ts";

const dir = mkdtempSync(`${tmpdir()}/tapwire-output-unit-`);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Texts of every kind the writer meets: short, long, non-ASCII, and one larger than a chunk. */
function texts(): string[] {
  const out: string[] = [];
  for (let i = 0; i < 5000; i++) out.push(`{"id":"${i}","path":"/p/${"x".repeat(i % 700)}","é→😀":"${i % 3 ? "ü" : ""}"}\n`);
  out.splice(2500, 0, `${"z".repeat(3 << 20)}\n`);
  return out;
}

/** A FIFO opened at both ends without blocking: [read end, write end]. */
function pipe(name: string): [number, number] {
  const path = `${dir}/${name}`;
  expect(Bun.spawnSync(["mkfifo", path]).exitCode).toBe(0);
  const r = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  const w = openSync(path, constants.O_WRONLY | constants.O_NONBLOCK);
  return [r, w];
}

function readAvailable(fd: number, into: Buffer[]): void {
  const buf = Buffer.allocUnsafe(1 << 16);
  for (;;) {
    let n = 0;
    try {
      n = readSync(fd, buf, 0, buf.length, null);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EAGAIN") return;
      throw e;
    }
    if (n === 0) return;
    into.push(Buffer.from(buf.subarray(0, n)));
  }
}

describe("output writer", () => {
  test("a regular file gets every text, in order, byte for byte", async () => {
    const path = `${dir}/out.json`;
    const fd = openSync(path, "w");
    const out = createOutputWriter({ fd, budgetBytes: 64 << 20 });
    const all = texts();
    for (let i = 0; i < all.length; i++) {
      expect(out.write(all[i]!)).toBe(true);
      if (i % 700 === 0) await out.flush();
    }
    await out.close(1000);
    closeSync(fd);
    expect(out.dropped).toBe(0);
    expect(readFileSync(path).equals(Buffer.from(all.join("")))).toBe(true);
  });

  test("texts and bytes mixed, one larger than a chunk: every one, in order, byte for byte", async () => {
    const path = `${dir}/mixed.json`;
    const fd = openSync(path, "w");
    const out = createOutputWriter({ fd, budgetBytes: 64 << 20 });
    const all = texts();
    const reused = new Uint8Array(4 << 20); // as a sink's buffer: overwritten after each call
    for (let i = 0; i < all.length; i++) {
      if (i % 2) {
        expect(out.write(all[i]!)).toBe(true);
      } else {
        const n = Buffer.from(reused.buffer).write(all[i]!);
        expect(out.writeBytes(reused.subarray(0, n))).toBe(true);
        reused.fill(0x2e, 0, n);
      }
      if (i % 900 === 0) await out.flush();
    }
    await out.close(1000);
    closeSync(fd);
    expect(out.dropped).toBe(0);
    expect(readFileSync(path).equals(Buffer.from(all.join("")))).toBe(true);
  });

  test("a pipe whose reader keeps reading gets every text, in order", async () => {
    const [r, w] = pipe("read");
    const out = createOutputWriter({ fd: w, budgetBytes: 64 << 20 });
    const all = texts();
    const got: Buffer[] = [];
    const reading = setInterval(() => readAvailable(r, got), 1);
    for (const t of all) out.write(t);
    await out.close(20_000);
    clearInterval(reading);
    readAvailable(r, got);
    closeSync(r);
    closeSync(w);
    expect(out.dropped).toBe(0);
    expect(Buffer.concat(got).equals(Buffer.from(all.join("")))).toBe(true);
  });

  test("a reader that stalls: past the budget whole texts are dropped and counted; close does not wait", async () => {
    const [r, w] = pipe("stall");
    const budget = 1 << 20;
    const out = createOutputWriter({ fd: w, budgetBytes: budget });
    const line = `${"y".repeat(999)}\n`;
    let accepted = 0;
    for (let i = 0; i < 5000; i++) {
      if (out.write(line)) accepted++;
      if (i % 100 === 0) void out.flush();
    }
    expect(accepted).toBeLessThanOrEqual(budget / 1000 + 128); // the budget, and what the pipe took
    expect(out.dropped).toBe(5000 - accepted);
    const t0 = performance.now();
    await out.close(200);
    expect(performance.now() - t0).toBeLessThan(1000);
    // What was still queued at close is dropped too. The pipe holds the lines in order; only
    // the write in progress may end inside a line (a pipe takes what fits).
    expect(out.dropped).toBeGreaterThan(5000 - accepted);
    // Nothing is taken once closed, and nothing queued before is written after.
    expect(out.write(line)).toBe(false);
    const got: Buffer[] = [];
    await Bun.sleep(50);
    readAvailable(r, got);
    await Bun.sleep(50);
    readAvailable(r, got);
    const text = Buffer.concat(got).toString("latin1");
    expect(text.length).toBeGreaterThan(0);
    expect(line.repeat(Math.ceil(text.length / 1000)).startsWith(text)).toBe(true);
    // Every flow is either out whole or counted: the one cut by the pipe is counted.
    expect(Math.floor(text.length / 1000) + out.dropped).toBe(5000 + 1);
    closeSync(r);
    closeSync(w);
  });

  test("flushes while the reader is behind share one promise, and all resolve once it catches up", async () => {
    const [r, w] = pipe("behind");
    const out = createOutputWriter({ fd: w, budgetBytes: 8 << 20 });
    const line = `${"z".repeat(99)}\n`;
    const flushes: Promise<void>[] = [];
    for (let i = 0; i < 20_000; i++) {
      out.write(line);
      flushes.push(out.flush());
    }
    expect(new Set(flushes).size).toBeLessThan(50);
    const got: Buffer[] = [];
    const all = Promise.all(flushes).then(() => true);
    while (!(await Promise.race([all, Bun.sleep(5).then(() => false)]))) readAvailable(r, got);
    readAvailable(r, got);
    expect(Buffer.concat(got).length).toBe(20_000 * 100);
    expect(out.dropped).toBe(0);
    await out.close(100);
    closeSync(r);
    closeSync(w);
  });

  test("a reader that goes away: failed says EPIPE, and nothing more is taken", async () => {
    const [r, w] = pipe("gone");
    closeSync(r);
    const out = createOutputWriter({ fd: w });
    out.write("hello\n");
    void out.flush();
    const e = await Promise.race([out.failed, Bun.sleep(5000).then(() => undefined)]);
    expect(e?.code).toBe("EPIPE");
    expect(out.write("more\n")).toBe(false);
    // Waiting for the queue after the failure does not wait at all.
    const settled = await Promise.race([out.flush().then(() => true), Bun.sleep(1000).then(() => false)]);
    expect(settled).toBe(true);
    const t0 = performance.now();
    await out.close(1000);
    expect(performance.now() - t0).toBeLessThan(100);
    closeSync(w);
  });
});
