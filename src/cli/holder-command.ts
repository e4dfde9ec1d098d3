// How to start tapwire's helper processes (the exec holder, the HAR writer): this very
// executable (or, from source, bun with this entry point) with a command users never type.
export const EXEC_HOLDER_COMMAND = "__exec-holder";
export const HAR_WRITER_COMMAND = "__har-writer";

function selfCommand(command: string): string[] {
  // A compiled executable's entry point lives in Bun's embedded file system.
  const compiled = Bun.main.startsWith("/$bunfs/");
  return compiled ? [process.execPath, command] : [process.execPath, Bun.main, command];
}

export function execHolderCommand(): string[] {
  return selfCommand(EXEC_HOLDER_COMMAND);
}

export function harWriterCommand(): string[] {
  return selfCommand(HAR_WRITER_COMMAND);
}
