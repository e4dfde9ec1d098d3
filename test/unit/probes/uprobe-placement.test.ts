// Where tapwire's uprobes go: the instruction classes as the kernel treats them, the places
// chosen in Debian's libssl and in Go test binaries (checked against objdump's reading of
// the same code), and, on small shared objects written here in assembly, each reason a place
// past the entry is refused.
import { beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { openElf } from "../../../src/elfkit/elf.ts";
import { loadDecoder } from "../../../src/elfkit/decode.ts";
import { classify, isEmulated, placeEntryProbe, placeGoEntry, planOpenssl } from "../../../src/probes/uprobe-placement.ts";
import { opensslFunctions, opensslProbes } from "../../../src/probes/openssl.ts";
import { goTlsTargets } from "../../../src/probes/go-tls-targets.ts";
import { goBinary, type GoVariant } from "../../support/go-build.ts";
import * as L from "../../../src/bpf/gen/layout.ts";

const LIBSSL = "/usr/lib/x86_64-linux-gnu/libssl.so.3";
const CODES = { read: L.TW_SSL_READ, write: L.TW_SSL_WRITE, readEx: L.TW_SSL_READ_EX, writeEx: L.TW_SSL_WRITE_EX, free: L.TW_SSL_FREE };

beforeAll(async () => {
  await loadDecoder();
});

/** objdump's instruction addresses in [from, to) of a file. */
export function objdumpBoundaries(path: string, from: number, to: number): Set<number> {
  const r = Bun.spawnSync(["objdump", "-d", "--no-show-raw-insn", `--start-address=0x${from.toString(16)}`, `--stop-address=0x${to.toString(16)}`, path], { stdout: "pipe" });
  const out = new Set<number>();
  for (const m of r.stdout.toString().matchAll(/^ *([0-9a-f]+):\t/gm)) out.add(parseInt(m[1]!, 16));
  return out;
}

describe("instruction classes, as the x86-64 kernel runs a uprobe on them", () => {
  const of = (...bytes: number[]) => classify({ bytes: new Uint8Array(bytes) });
  test("emulated: push of a register, direct call, jmp, jcc and nop", () => {
    expect(of(0x55)).toBe("push");
    expect(of(0x41, 0x55)).toBe("push"); // push r13
    expect(of(0xe8, 0, 0, 0, 0)).toBe("call");
    expect(of(0xeb, 0x03)).toBe("jmp");
    expect(of(0xe9, 0, 0, 0, 0)).toBe("jmp");
    expect(of(0x75, 0x10)).toBe("jcc");
    expect(of(0x0f, 0x86, 0, 0, 0, 0)).toBe("jcc"); // jbe rel32
    expect(of(0x90)).toBe("nop");
    expect(of(0x0f, 0x1f, 0x44, 0x00, 0x00)).toBe("nop5");
  });
  test("single-stepped: everything else, and branches with an operand-size prefix", () => {
    expect(of(0x48, 0x83, 0xec, 0x18)).toBe("single-stepped"); // sub rsp, 0x18
    expect(of(0x49, 0x3b, 0x66, 0x10)).toBe("single-stepped"); // cmp rsp, [r14+0x10]
    expect(of(0xc3)).toBe("single-stepped"); // ret
    expect(of(0xff, 0xd0)).toBe("single-stepped"); // call rax
    expect(of(0x66, 0xe8, 0, 0)).toBe("single-stepped"); // callw: not emulated
    expect(of(0x66, 0x55)).toBe("single-stepped"); // push bp
    expect(of(0xf3, 0x90)).toBe("single-stepped"); // pause
    expect(of(0x0f, 0x1f, 0x00)).toBe("single-stepped"); // nopl (rax): not the 5-byte form
  });
});

describe("Debian's libssl", () => {
  test("SSL_read and SSL_read_ex share one probe on the internal function both call; so do the writes", () => {
    const probes = opensslProbes(LIBSSL, opensslFunctions(LIBSSL), "chosen");
    const read = probes.find((p) => p.covers.includes("SSL_read"))!;
    const write = probes.find((p) => p.covers.includes("SSL_write"))!;
    expect(read.covers).toEqual(["SSL_read", "SSL_read_ex"]);
    expect(write.covers).toEqual(["SSL_write", "SSL_write_ex"]);
    for (const [p, fn] of [[read, L.TW_SSL_READ_EX], [write, L.TW_SSL_WRITE_EX]] as const) {
      expect(p.fn).toBe(fn);
      expect(p.returns).toBe(true);
      expect(p.place.class).toBe("push");
      // The place is the target of the call objdump reads in the exported function.
      const exported = opensslFunctions(LIBSSL).find((f) => f.name === p.covers[0])!;
      const dump = Bun.spawnSync(["objdump", "-d", "--no-show-raw-insn", `--start-address=0x${exported.vaddr.toString(16)}`, `--stop-address=0x${(exported.vaddr + exported.size).toString(16)}`, LIBSSL]).stdout.toString();
      expect(dump).toContain(`call   ${p.place.vaddr.toString(16)} `);
      expect(p.offset).toBe(p.place.vaddr); // libssl's code is mapped at its file offset
    }
    // Every exported function is covered exactly once.
    expect(probes.flatMap((p) => p.covers).sort()).toEqual(opensslFunctions(LIBSSL).map((f) => f.name).sort());
    const free = probes.find((p) => p.covers[0] === "SSL_free")!;
    expect(free.returns).toBe(false);
    expect(isEmulated(free.place.class)).toBe(true);
  });

  test("--uprobe-placement entry: every probe at its function's entry", () => {
    const fns = opensslFunctions(LIBSSL);
    const probes = opensslProbes(LIBSSL, fns, "entry");
    expect(probes.map((p) => [p.covers, p.offset])).toEqual(fns.map((f) => [[f.name], f.offset]));
  });
});

describe("Go test binaries", () => {
  for (const variant of ["plain", "stripped", "pie", "v3"] as GoVariant[]) {
    test(`${variant}: Write and Read probed past the stack check, on an instruction objdump also reads`, () => {
      const path = goBinary(variant);
      const elf = openElf(path);
      try {
        const go = goTlsTargets(elf)!;
        for (const f of [go.write!, go.read!]) {
          expect(f.entry.once).toBe(true);
          expect(isEmulated(f.entry.class)).toBe(true);
          expect(f.entry.vaddr).toBeGreaterThan(f.vaddr);
          expect(f.fileOffset).toBe(elf.fileOffset(f.entry.vaddr)!);
          const boundaries = objdumpBoundaries(path, f.vaddr, f.entry.vaddr + 16);
          expect(boundaries.has(f.entry.vaddr)).toBe(true);
          // Past the stack check's branch: the instructions before the place include it.
          const before = [...boundaries].filter((a) => a < f.entry.vaddr);
          expect(before.length).toBeGreaterThanOrEqual(3);
        }
        const entry = goTlsTargets(elf, "entry")!;
        expect(entry.read!.entry.vaddr).toBe(entry.read!.vaddr);
        expect(entry.read!.entry.once).toBe(false);
      } finally {
        elf.close();
      }
    });
  }
});

describe("refusals, on code written to be refused", () => {
  let lib: string;
  beforeAll(() => {
    const dir = mkdtempSync(`${tmpdir()}/tapwire-placement-`);
    // Each function: a shape tapwire must not move a probe past. `inner` stands for the
    // internal function; ERR_new for OpenSSL's error reporting.
    const fns: Record<string, string> = {
      // The real shape: forwards its arguments, returns max(result, 0).
      ok_read_ex: "sub $8,%rsp; call inner; xor %edx,%edx; test %eax,%eax; cmovs %edx,%eax; add $8,%rsp; ret",
      ok_read: "sub $0x18,%rsp; test %edx,%edx; js 1f; mov %rsp,%rcx; movslq %edx,%rdx; call inner; test %eax,%eax; jle 2f; mov (%rsp),%eax; 2: add $0x18,%rsp; ret; 1: call ERR_new; mov $-1,%eax; jmp 2b",
      // Changes its buffer argument before the call.
      bad_args_ex: "sub $8,%rsp; add $1,%rsi; call inner; add $8,%rsp; ret",
      // Returns 1 whatever the internal function returned.
      bad_result_ex: "sub $8,%rsp; call inner; mov $1,%eax; add $8,%rsp; ret",
      // Calls the internal function twice.
      twice_read: "sub $0x18,%rsp; mov %rsp,%rcx; call inner; mov %rsp,%rcx; call inner; add $0x18,%rsp; ret",
      // Calls another function of its own library besides.
      other_read: "sub $0x18,%rsp; mov %rsp,%rcx; call inner; call other; add $0x18,%rsp; ret",
      // Loops back over the call.
      loop_read: "sub $0x18,%rsp; 1: mov %rsp,%rcx; call inner; test %eax,%eax; jle 1b; add $0x18,%rsp; ret",
      // A free whose prologue is jumped into from later in the function.
      jumped_free: "test %rdi,%rdi; mov %rdi,%rax; je 1f; 2: ret; 1: jmp 2b",
      jumped_into_free: "test %rdi,%rdi; 3: mov %rsi,%rax; je 1f; ret; 1: xor %esi,%esi; jmp 3b",
      // Overwrites the argument the probe reads before anything emulated.
      clobber_free: "mov %rsi,%rdi; test %rdi,%rdi; je 1f; 1: ret",
    };
    const asm = [
      ".text",
      ".type inner,@function\ninner: push %rbx; mov $1,%eax; pop %rbx; ret\n.size inner, .-inner",
      ".type other,@function\nother: push %rbx; pop %rbx; ret\n.size other, .-other",
      ".globl ERR_new\n.type ERR_new,@function\nERR_new: ret\n.size ERR_new, .-ERR_new",
      ...Object.entries(fns).map(([n, body]) => `.globl ${n}\n.type ${n},@function\n${n}: ${body}\n.size ${n}, .-${n}`),
    ].join("\n");
    writeFileSync(`${dir}/shapes.s`, asm.replaceAll("; ", "\n"));
    lib = `${dir}/libshapes.so`;
    const r = Bun.spawnSync(["clang", "-shared", "-nostdlib", "-o", lib, `${dir}/shapes.s`], { stderr: "pipe" });
    if (r.exitCode !== 0) throw new Error(`clang: ${r.stderr}`);
  });

  /** The plan for a pair of this library's functions standing for SSL_read and SSL_read_ex. */
  function planFor(plain: string, ex: string) {
    const elf = openElf(lib);
    try {
      const syms = elf.symbols(new Set([plain, ex]));
      const fn = (name: string, as: string, code: number) => ({ name: as, fn: code, vaddr: syms.get(name)!.value, size: syms.get(name)!.size });
      return planOpenssl(elf, [fn(plain, "SSL_read", L.TW_SSL_READ), fn(ex, "SSL_read_ex", L.TW_SSL_READ_EX)], CODES);
    } finally {
      elf.close();
    }
  }
  const placeOf = (name: string, reads: string[]) => {
    const elf = openElf(lib);
    try {
      const s = elf.symbols(new Set([name])).get(name)!;
      return { place: placeEntryProbe(elf, s.value, s.size, reads), entry: s.value };
    } finally {
      elf.close();
    }
  };

  test("the real shape moves to the internal function", () => {
    const plan = planFor("ok_read", "ok_read_ex");
    expect(plan).toHaveLength(1);
    expect(plan[0]!.covers).toEqual(["SSL_read", "SSL_read_ex"]);
    expect(plan[0]!.place.instruction).toBe("push rbx");
  });
  test("an _ex function that changes an argument, or its result, keeps both entries", () => {
    for (const [ex, why] of [["bad_args_ex", "changes an argument (rsi)"], ["bad_result_ex", "returns 1 when the call returns 0"]]) {
      const plan = planFor("ok_read", ex!);
      expect(plan.map((p) => p.covers)).toEqual([["SSL_read"], ["SSL_read_ex"]]);
      expect(plan[0]!.place.why).toContain(why);
      expect(plan[0]!.place.class).toBe("single-stepped");
    }
  });
  test("a read that calls the internal function twice, calls another, or loops over it keeps both entries", () => {
    for (const [plain, why] of [["twice_read", "calls that function 2 times"], ["other_read", "also calls"], ["loop_read", "may run the call again"]]) {
      const plan = planFor(plain!, "ok_read_ex");
      expect(plan.map((p) => p.covers)).toEqual([["SSL_read"], ["SSL_read_ex"]]);
      expect(plan[0]!.place.why).toContain(why);
    }
  });
  test("an entry probe moves past instructions that leave its register alone, not past a jump target or a write to it", () => {
    const moved = placeOf("jumped_free", ["rdi"]);
    expect(moved.place.class).toBe("jcc");
    expect(moved.place.vaddr).toBeGreaterThan(moved.entry);
    const jumped = placeOf("jumped_into_free", ["rdi"]);
    expect(jumped.place.vaddr).toBe(jumped.entry);
    expect(jumped.place.why).toContain("jumps between the entry and the place");
    const clobbered = placeOf("clobber_free", ["rdi"]);
    expect(clobbered.place.vaddr).toBe(clobbered.entry);
    expect(clobbered.place.why).toContain("overwrites rdi");
  });
});

describe("Go functions without a stack check", () => {
  test("keep their entry, and are not taken as passed once", () => {
    const path = goBinary("plain");
    const elf = openElf(path);
    try {
      // runtime.memmove is NOSPLIT: no stack check.
      const f = elf.symbols(new Set(["runtime.memmove"]), ".symtab").get("runtime.memmove")!;
      const p = placeGoEntry(elf, f.value, f.size);
      expect(p.vaddr).toBe(f.value);
      expect(p.once).toBe(false);
      expect(p.why).toContain("no stack check");
    } finally {
      elf.close();
    }
  });
});
