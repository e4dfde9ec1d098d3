// `tapwire gen TEMPLATE BINARY [key=value ...] [-o FILE]`: a bpftrace program for a Go
// executable, from a built-in template or a template file.
import { existsSync, readFileSync, realpathSync, writeFileSync } from "node:fs";
import { openElf, ElfError } from "../elfkit/elf.ts";
import { loadDecoder } from "../elfkit/decode.ts";
import { GoPclntabError } from "../elfkit/gopclntab.ts";
import { goTarget, GenError } from "../probes/bpftrace/go-target.ts";
import { generate } from "../probes/bpftrace/generate.ts";
import { detectBpftrace } from "../probes/bpftrace/bpftrace-support.ts";
import { BUILT_IN_TEMPLATES } from "../probes/bpftrace/templates.ts";
import { UsageError, type GenArgs } from "./args.ts";
import { fileError } from "./file-errors.ts";

export async function gen(args: GenArgs): Promise<number> {
  let template = BUILT_IN_TEMPLATES[args.template];
  if (template === undefined) {
    if (!args.template.includes("/") && !existsSync(args.template)) {
      throw new UsageError(`no template "${args.template}": built in are ${Object.keys(BUILT_IN_TEMPLATES).join(", ")}; or give a template file's path`);
    }
    try {
      template = readFileSync(args.template, "utf8");
    } catch (e) {
      throw new UsageError(fileError(args.template, e));
    }
  }
  let path: string;
  try {
    path = realpathSync(args.binary);
  } catch (e) {
    throw new UsageError(fileError(args.binary, e));
  }
  await loadDecoder();
  let elf;
  try {
    elf = openElf(path);
  } catch (e) {
    if (e instanceof ElfError) throw new UsageError(fileError(args.binary, new Error(e.message.replace(`${path}: `, ""))));
    if ((e as NodeJS.ErrnoException).code) throw new UsageError(fileError(args.binary, e));
    throw e;
  }
  const params = new Map<string, string[]>();
  for (const [k, v] of args.params) params.set(k, [...(params.get(k) ?? []), v]);
  let out;
  try {
    const target = goTarget(elf, path);
    out = generate({
      template,
      templateName: args.template,
      target,
      params,
      bpftrace: detectBpftrace(),
      command: `tapwire gen ${[args.template, args.binary, ...args.params.map(([k, v]) => `${k}=${v}`)].join(" ")}`,
    });
  } catch (e) {
    if (e instanceof GenError || e instanceof GoPclntabError) throw new UsageError(e.message);
    throw e;
  } finally {
    elf.close();
  }
  if (args.output) {
    try {
      writeFileSync(args.output, out.script);
    } catch (e) {
      throw new UsageError(`-o ${fileError(args.output, e)}`);
    }
  }
  else process.stdout.write(out.script);
  if (out.unsafe) process.stderr.write(`tapwire: run it with bpftrace --unsafe (its probes are placed at file offsets)\n`);
  return 0;
}
