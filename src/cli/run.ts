// tapwire's commands: parse the command line, run the command, turn every failure a user
// can cause into one line on stderr and exit code 2.
import { parseCommandLine, UsageError } from "./args.ts";
import { usageOf } from "./usage.ts";
import { SetupError, setLibbpfDebug } from "../bpf/libbpf.ts";
import { CaptureConfigError } from "../capture/errors.ts";
import { capture } from "./capture.ts";
import { serve } from "./serve.ts";
import { watch } from "./watch.ts";
import { doctor } from "./doctor.ts";
import { inspect } from "./inspect.ts";
import { containersCommand } from "./containers.ts";
import { keylog } from "./keylog.ts";
import { gen } from "./gen.ts";
import pkg from "../../package.json" with { type: "json" };

export async function run(argv: string[]): Promise<number> {
  const debug = !!process.env.TAPWIRE_DEBUG;
  setLibbpfDebug(debug);
  try {
    const args = parseCommandLine(argv, !!process.stdout.isTTY);
    switch (args.command) {
      case "help":
        console.log(usageOf(args.topic));
        return 0;
      case "version":
        console.log(`tapwire ${pkg.version}`);
        return 0;
      case "doctor":
        return await doctor(!!process.stdout.isTTY);
      case "capture":
        return await capture(args);
      case "serve":
        return await serve(args);
      case "watch":
        return await watch(args);
      case "inspect":
        return await inspect(args.file, args.json);
      case "containers":
        return await containersCommand(args);
      case "keylog":
        return await keylog(args);
      case "gen":
        return await gen(args);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`tapwire: ${e.message}\n`);
      return 2;
    }
    if (e instanceof CaptureConfigError) {
      process.stderr.write(`tapwire: ${e.message}\n`);
      return 2;
    }
    if (e instanceof SetupError) {
      process.stderr.write(`tapwire: ${e.message}${e.hint ? ` (${e.hint})` : ""}\n`);
      return 2;
    }
    process.stderr.write(`tapwire: internal error: ${(e as Error)?.message ?? e}\n`);
    if (debug) process.stderr.write(`${(e as Error)?.stack}\n`);
    return 1;
  }
}
