// The TypeScript twin of bpf/tapwire.h must match the compiled object's BTF.
import { expect, test } from "bun:test";
import { renderLayout, readBtf, structLayout, headerConstants } from "../../../scripts/gen-layout.ts";
import * as L from "../../../src/bpf/gen/layout.ts";

const ROOT = `${import.meta.dir}/../../..`;

test("src/bpf/gen/layout.ts is what the object's BTF and the header say", async () => {
  const types = readBtf(`${ROOT}/build/tapwire.bpf.o`);
  const header = await Bun.file(`${ROOT}/bpf/tapwire.h`).text();
  expect(await Bun.file(`${ROOT}/src/bpf/gen/layout.ts`).text()).toBe(renderLayout(types, header));
});

test("records are 8-byte aligned where the ring buffer needs it and fields do not overlap", () => {
  const types = readBtf(`${ROOT}/build/tapwire.bpf.o`);
  for (const name of ["tw_conn_open_event", "tw_data_event", "tw_conn_close_event", "tw_proc_exec_event", "tw_proc_exit_event"]) {
    const { size, fields } = structLayout(types, name);
    expect(size % 8).toBe(0);
    expect(fields["hdr.kind"]).toBe(0);
    expect(fields["hdr.ts_ns"] % 8).toBe(0);
  }
  expect(L.tw_data_event.size).toBe(64);
});

test("enum values in the header are explicit and unique per enum", async () => {
  const header = await Bun.file(`${ROOT}/bpf/tapwire.h`).text();
  const consts = headerConstants(header);
  const counters = Object.entries(consts).filter(([k]) => k.startsWith("TW_CNT_") && k !== "TW_CNT_MAX");
  expect(new Set(counters.map(([, v]) => v)).size).toBe(counters.length);
  expect(Math.max(...counters.map(([, v]) => v)) + 1).toBe(consts.TW_CNT_MAX);
});
