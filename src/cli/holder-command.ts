// How to start the exec holder: this very executable (or, from source, bun with this
// entry point) with a command users never type.
export const EXEC_HOLDER_COMMAND = "__exec-holder";

export function execHolderCommand(): string[] {
  // A compiled executable's entry point lives in Bun's embedded file system.
  const compiled = Bun.main.startsWith("/$bunfs/");
  return compiled ? [process.execPath, EXEC_HOLDER_COMMAND] : [process.execPath, Bun.main, EXEC_HOLDER_COMMAND];
}
