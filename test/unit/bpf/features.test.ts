// Kernel feature probes, asked of the running kernel (needs root, as the loader does; without
// it this fails rather than skips). The answer must agree with the kernel version the feature
// came in: a probe that says no where the feature must be is broken, not a reason to skip.
import { expect, test } from "bun:test";
import { release } from "node:os";
import { probeUprobeMulti, uprobeMultiSupported } from "../../../src/bpf/features.ts";
import { isRoot } from "../../../src/bpf/system.ts";

const [major, minor] = release().split(".").map((x) => parseInt(x, 10)) as [number, number];
const atLeast = (maj: number, min: number) => major > maj || (major === maj && minor >= min);

test("the feature probes run as root (the bpf syscall needs it)", () => {
  expect(isRoot()).toBe(true);
});

test(`multi-uprobe links: supported exactly from Linux 6.6 on x86-64 (this is ${release()} on ${process.arch})`, () => {
  expect(Number.isInteger(major) && Number.isInteger(minor)).toBe(true);
  const answer = probeUprobeMulti();
  const expected = process.arch === "x64" && atLeast(6, 6);
  expect({ supported: answer.supported, reason: answer.reason }).toEqual({ supported: expected, reason: expect.any(String) });
  if (expected) expect(answer.reason).toContain("supported (the kernel looked the path up)");
  else if (process.arch === "x64") expect(answer.reason).toMatch(/not supported by this kernel|does not load programs for them/);
});

// The test above already says yes here; this one names it, for the kernels tapwire is tested
// on. Elsewhere it is skipped, said by its name, and the test above checks the no.
const modern = process.arch === "x64" && atLeast(6, 6);
test.skipIf(!modern)(`multi-uprobe links: yes on this machine (skipped only before Linux 6.6 or off x86-64)`, () => {
  expect(uprobeMultiSupported()).toBe(true);
});

test("the answer is asked once and kept for the process", () => {
  expect(probeUprobeMulti()).toBe(probeUprobeMulti());
});
