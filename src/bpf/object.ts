// The compiled BPF object, embedded in the executable by `bun build --compile` (and read
// from build/ when running from source).
import objectPath from "../../build/tapwire.bpf.o" with { type: "file" };
import { SetupError } from "./libbpf.ts";

export async function readBpfObject(): Promise<Uint8Array> {
  const file = Bun.file(objectPath);
  if (!(await file.exists())) throw new SetupError(`the BPF object is missing (${objectPath})`, "run npm run build");
  return new Uint8Array(await file.arrayBuffer());
}
