// The HAR file: valid HAR after every flow, still valid when tapwire is SIGKILLed at any
// moment (its writer process, the real one from src/cli/main.ts, writes what it was given),
// left valid by a full disk (a real small tmpfs) with the error said once, bounded when the
// writer falls behind, and refused where it cannot be rewritten in place.
import { afterAll, describe, expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { create } from "@bufbuild/protobuf";
import { FlowSchema, Protocol, Role, type Flow } from "../../../src/gen/tapwire/v1/flow_pb.ts";
import { createHarFileSink as createSink } from "../../../src/sinks/har-file.ts";
import { harProblems } from "../../support/har-validate.ts";
import { waitFor } from "../../e2e/harness.ts";

// The writer process as tapwire starts it from source: bun, the entry point, the command.
const MAIN = `${import.meta.dir}/../../../src/cli/main.ts`;
const WRITER = [process.execPath, MAIN, "__har-writer"];
const createHarFileSink = (path: string, maxQueuedBytes?: number) => createSink(path, { writerCommand: WRITER, maxQueuedBytes });

const dir = mkdtempSync(`${tmpdir()}/tapwire-har-`);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function flow(i: number, bodyBytes = 32): Flow {
  return create(FlowSchema, {
    id: `f${i}`,
    startTime: { seconds: 1_700_000_000n + BigInt(i), nanos: 0 },
    endTime: { seconds: 1_700_000_000n + BigInt(i), nanos: 1_000_000 },
    protocol: Protocol.HTTP1,
    connection: { id: BigInt(i), role: Role.CLIENT, destination: { ip: "127.0.0.1", port: 80 } },
    request: { method: "GET", path: `/item/${i}`, authority: "h", version: "HTTP/1.1", headers: [{ name: "Host", value: "h" }] },
    response: { status: 200, reason: "OK", version: "HTTP/1.1", headers: [{ name: "Content-Type", value: "text/plain" }], body: Buffer.from("x".repeat(bodyBytes)), bodySize: BigInt(bodyBytes) },
  });
}

const read = (path: string) => JSON.parse(readFileSync(path, "utf8"));

describe("the HAR file", () => {
  test("a valid HAR document after every flow, and before the first; entries in order", async () => {
    const path = `${dir}/every.har`;
    const sink = createHarFileSink(path);
    expect(read(path).log.entries).toEqual([]);
    expect(harProblems(read(path))).toEqual([]);
    for (let i = 0; i < 25; i++) {
      sink.flow(flow(i, i * 7));
      await waitFor(`entry ${i}`, () => sink.written === i + 1);
      const doc = read(path);
      expect(harProblems(doc)).toEqual([]);
      expect(doc.log.entries.map((e: { _flowId: string }) => e._flowId)).toEqual(Array.from({ length: i + 1 }, (_, j) => `f${j}`));
    }
    expect(sink.sent).toBe(25);
    await sink.close();
    expect(read(path).log.entries[24].response.content.text).toBe("x".repeat(24 * 7));
  });

  test("an existing file is replaced, not appended to; close waits for what was given", async () => {
    const path = `${dir}/old.har`;
    writeFileSync(path, "old content that is longer than an empty HAR document ".repeat(20));
    const sink = createHarFileSink(path);
    sink.flow(flow(1));
    await sink.close();
    expect(read(path).log.entries.map((e: { _flowId: string }) => e._flowId)).toEqual(["f1"]);
  });

  test("SIGKILL of tapwire at any moment: the file parses and validates at once, and once the writer has written what it was given", async () => {
    for (let round = 0; round < 12; round++) {
      const path = `${dir}/killed-${round}.har`;
      // A sink fed without pause, entries from none to 200 kB (many pages each), killed.
      // (Written by the sink itself, such entries were found cut after a SIGKILL.)
      const script = `
        import { createHarFileSink } from ${JSON.stringify(`${import.meta.dir}/../../../src/sinks/har-file.ts`)};
        import { create } from "@bufbuild/protobuf";
        import { FlowSchema } from ${JSON.stringify(`${import.meta.dir}/../../../src/gen/tapwire/v1/flow_pb.ts`)};
        const sink = createHarFileSink(${JSON.stringify(path)}, { writerCommand: ${JSON.stringify(WRITER)} });
        console.log("ready");
        for (let i = 0; ; i++) {
          sink.flow(create(FlowSchema, { id: "k" + i, request: { method: "GET", path: "/" + i }, response: { status: 200, body: new TextEncoder().encode("y".repeat((i * 7919) % 200000)) } }));
          if (i % 4 === 0) await Bun.sleep(0);
        }
      `;
      const proc = Bun.spawn([process.execPath, "-e", script], { cwd: `${import.meta.dir}/../../..`, stdout: "pipe", stderr: "inherit" });
      await proc.stdout.getReader().read(); // "ready"
      await Bun.sleep(40 + ((round * 37) % 200));
      proc.kill("SIGKILL");
      expect(await proc.exited).not.toBe(0);
      const check = () => {
        const doc = read(path);
        expect(harProblems(doc)).toEqual([]);
        // In order; some may have been dropped (the sink is fed faster than a disk takes it).
        const ids = doc.log.entries.map((e: { _flowId: string }) => Number(e._flowId.slice(1)));
        expect(ids).toEqual([...ids].sort((a, b) => a - b));
        expect(new Set(ids).size).toBe(ids.length);
        return doc.log.entries.length as number;
      };
      check();
      // The writer ends when its input does; the file then holds what it was given.
      await Bun.sleep(300);
      expect(check()).toBeGreaterThan(0);
    }
  }, 60_000);

  test("a full disk: the write fails once, the file keeps every entry written before, valid", async () => {
    if (process.getuid?.() !== 0) throw new Error("this test mounts a small tmpfs: run it as root");
    const mnt = `${dir}/small`;
    mkdirSync(mnt);
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=256k", "tapwire-har-test", mnt]);
    try {
      const path = `${mnt}/full.har`;
      const sink = createHarFileSink(path);
      let failure: { error: NodeJS.ErrnoException; written: number } | undefined;
      void sink.failed.then((f) => (failure = f));
      for (let i = 0; i < 200 && !failure; i++) {
        sink.flow(flow(i, 10_000));
        await Bun.sleep(1);
      }
      await waitFor("the failure", () => failure);
      expect(failure!.error.code).toBe("ENOSPC");
      expect(failure!.written).toBeGreaterThan(5);
      expect(sink.written).toBe(failure!.written);
      const sent = sink.sent;
      sink.flow(flow(999)); // after the failure: nothing more
      expect(sink.sent).toBe(sent);
      await sink.close();
      const doc = read(path);
      expect(harProblems(doc)).toEqual([]);
      expect(doc.log.entries).toHaveLength(failure!.written);
    } finally {
      execFileSync("umount", [mnt]);
    }
  });

  test("a writer that falls behind costs whole flows, counted, not memory", async () => {
    const sink = createHarFileSink(`${dir}/behind.har`, 64 * 1024);
    // No turn of the event loop between flows: nothing reaches the writer meanwhile.
    for (let i = 0; i < 100; i++) sink.flow(flow(i, 4000));
    expect(sink.dropped).toBeGreaterThan(50);
    expect(sink.sent + sink.dropped).toBe(100);
    await sink.close();
    const doc = read(`${dir}/behind.har`);
    expect(harProblems(doc)).toEqual([]);
    expect(doc.log.entries).toHaveLength(sink.sent);
  });

  test("a writer that cannot be started is a failure said once, not a crash; the file stays valid", async () => {
    const path = `${dir}/nowriter.har`;
    const sink = createSink(path, { writerCommand: [`${dir}/no-such-program`] });
    const f = await Promise.race([sink.failed, Bun.sleep(5000).then(() => undefined)]);
    expect(f?.error.message).toMatch(/^the HAR writer could not start: /);
    sink.flow(flow(1));
    expect(sink.sent).toBe(0);
    await sink.close();
    expect(read(path).log.entries).toEqual([]);
  });

  test("refused: a symbolic link, a directory, a FIFO (never waited on), a missing directory", () => {
    symlinkSync(`${dir}/target.har`, `${dir}/link.har`);
    expect(() => createHarFileSink(`${dir}/link.har`)).toThrow(expect.objectContaining({ code: "ELOOP" }));
    expect(existsSync(`${dir}/target.har`)).toBe(false);
    expect(() => createHarFileSink(dir)).toThrow(expect.objectContaining({ code: "EISDIR" }));
    execFileSync("mkfifo", [`${dir}/fifo`]);
    expect(() => createHarFileSink(`${dir}/fifo`)).toThrow(expect.objectContaining({ code: "ENXIO" }));
    expect(() => createHarFileSink(`${dir}/no/such.har`)).toThrow(expect.objectContaining({ code: "ENOENT" }));
  });
});
