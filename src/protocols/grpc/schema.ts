// gRPC message schemas the user gives: .proto files under directories (--proto-path), read
// with protobufjs (the maintained .proto parser for JavaScript), or descriptor sets
// (--proto-set: `buf build -o`, `protoc --include_imports --descriptor_set_out`). Both become
// one @bufbuild/protobuf registry; a call's messages are then read by their method's input
// and output types and shown as proto3 JSON.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import protobuf from "protobufjs";
import descriptorExt from "protobufjs/ext/descriptor";
import { createFileRegistry, fromBinary, toJsonString, type FileRegistry } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema, type FileDescriptorSet } from "@bufbuild/protobuf/wkt";

export class SchemaError extends Error {}

export type MessageReader = (service: string, method: string, side: "request" | "response", data: Uint8Array) => { json: string; type: string } | undefined;

export function loadGrpcSchemas(opts: { protoPaths: string[]; protoSets: string[] }): MessageReader | undefined {
  if (!opts.protoPaths.length && !opts.protoSets.length) return undefined;
  const files = new Map<string, FileDescriptorSet["file"][number]>();
  for (const path of opts.protoSets) {
    let set: FileDescriptorSet;
    let bytes: Uint8Array;
    try {
      bytes = readFileSync(path);
    } catch (e) {
      throw new SchemaError(`--proto-set ${path}: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (e as Error).message}`);
    }
    try {
      set = fromBinary(FileDescriptorSetSchema, bytes);
    } catch (e) {
      throw new SchemaError(`--proto-set ${path}: not a binary FileDescriptorSet (${(e as Error).message})`);
    }
    for (const f of set.file) files.set(f.name, f);
  }
  for (const dir of opts.protoPaths) for (const f of parseProtoDir(dir).file) if (!files.has(f.name)) files.set(f.name, f);
  let registry: FileRegistry;
  try {
    registry = createFileRegistry({ $typeName: "google.protobuf.FileDescriptorSet", file: [...files.values()] });
  } catch (e) {
    throw new SchemaError(`the schemas given do not form a whole: ${(e as Error).message}`);
  }
  return (service, method, side, data) => {
    const m = registry.getService(service)?.methods.find((x) => x.name === method);
    if (!m) return undefined;
    const desc = side === "request" ? m.input : m.output;
    try {
      return { json: toJsonString(desc, fromBinary(desc, data)), type: desc.typeName };
    } catch {
      return undefined; // not a message of that type: read without the schema instead
    }
  };
}

/** Every .proto file under `dir`, parsed, as a descriptor set with fully-qualified type names. */
function parseProtoDir(dir: string): FileDescriptorSet {
  let protos: string[];
  try {
    protos = listProtos(dir);
  } catch (e) {
    throw new SchemaError(`--proto-path ${dir}: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such directory" : (e as Error).message}`);
  }
  if (!protos.length) throw new SchemaError(`--proto-path ${dir}: no .proto files in it`);
  const root = new protobuf.Root();
  // Imports are found under the directory first (as protoc -I does), then among
  // protobufjs's own copies of google/protobuf/*.proto.
  root.resolvePath = (origin, target) => {
    const inDir = join(dir, target);
    try {
      if (statSync(inDir).isFile()) return inDir;
    } catch {}
    return protobuf.util.path.resolve(origin, target);
  };
  try {
    root.loadSync(protos, { keepCase: true });
    root.resolveAll();
  } catch (e) {
    throw new SchemaError(`--proto-path ${dir}: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such directory" : (e as Error).message}`);
  }
  const set = (root as unknown as { toDescriptor(syntax: string): unknown }).toDescriptor("proto3");
  const bytes = (descriptorExt as unknown as { FileDescriptorSet: { encode(m: unknown): { finish(): Uint8Array } } }).FileDescriptorSet.encode(set).finish();
  const fds = fromBinary(FileDescriptorSetSchema, bytes);
  qualifyTypeNames(fds, root, dir);
  return fds;
}

function listProtos(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listProtos(path));
    else if (entry.name.endsWith(".proto")) out.push(path);
  }
  return out.sort((a, b) => relative(dir, a).localeCompare(relative(dir, b)));
}

type Desc = FileDescriptorSet["file"][number]["messageType"][number];

/** protobufjs names field types relative to their message; a registry needs ".pkg.Type". */
function qualifyTypeNames(fds: FileDescriptorSet, root: protobuf.Root, dir: string): void {
  const resolve = (scopes: string[], name: string, nested: Desc[]): string => {
    if (name.startsWith(".")) return name;
    const own = nested.find((n) => n.name === name);
    if (own) return `.${scopes[0]}.${name}`;
    for (const scope of scopes) {
      const ns = scope ? root.lookup(scope) : root;
      const found = ns instanceof protobuf.Namespace ? ns.lookup(name.split("."), [protobuf.Type, protobuf.Enum]) : null;
      if (found) return found.fullName;
    }
    throw new SchemaError(`--proto-path ${dir}: type ${name} not found from ${scopes[0]}`);
  };
  const walk = (msgs: Desc[], scope: string, parents: string[]) => {
    for (const m of msgs) {
      const full = scope ? `${scope}.${m.name}` : m.name;
      for (const f of m.field) {
        if (f.typeName) f.typeName = resolve([full, ...parents], f.typeName, m.nestedType);
        // protobufjs leaves json_name empty; proto3 JSON names a field in lowerCamelCase.
        if (!f.jsonName) f.jsonName = f.name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
      }
      walk(m.nestedType, full, [full, ...parents]);
    }
  };
  for (const file of fds.file) walk(file.messageType, file.package, [file.package]);
}
