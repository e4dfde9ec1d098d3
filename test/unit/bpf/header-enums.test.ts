// The enums events.ts writes by hand (const enums, inlined in per-event code) must be the
// header's: every member equal to its generated constant in src/bpf/gen/layout.ts, and
// every value of the header's enum with a TypeScript twin.
import { describe, expect, test } from "bun:test";
import * as events from "../../../src/bpf/events.ts";
import * as L from "../../../src/bpf/gen/layout.ts";

const ROOT = `${import.meta.dir}/../../..`;
const header = await Bun.file(`${ROOT}/bpf/tapwire.h`).text();
const generated = L as unknown as Record<string, unknown>;

/** TypeScript enum, the C enum it mirrors, and the prefix of that enum's names. */
const TWINS = [
  ["Direction", "tw_direction", "TW_DIR_"],
  ["ConnOrigin", "tw_origin", "TW_ORIGIN_"],
  ["ConnClass", "tw_class", "TW_CLASS_"],
] as const;

/** Members of `enum name { ... }` in the header, comments left out; a member without an
 * explicit value has value NaN (the header gives every member one). */
function headerEnum(name: string): Map<string, number> {
  const block = new RegExp(`enum\\s+${name}\\s*\\{([^}]*)\\}`).exec(header);
  if (!block) throw new Error(`enum ${name} is not in bpf/tapwire.h`);
  const body = block[1]!.replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/.*$/gm, "");
  const members = new Map<string, number>();
  for (const item of body.split(",")) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:=\s*(.+?))?\s*$/.exec(item);
    if (!m) continue; // the empty item after the last comma
    members.set(m[1]!, m[2] !== undefined && /^\d+$/.test(m[2]) ? Number(m[2]) : NaN);
  }
  return members;
}

/** The members of a TypeScript enum as it exists at run time (name -> value). */
function tsEnum(name: string): Map<string, number> {
  const object = (events as unknown as Record<string, Record<string, unknown>>)[name];
  if (!object) throw new Error(`events.ts exports no enum ${name} at run time`);
  return new Map(Object.entries(object).filter((e): e is [string, number] => typeof e[1] === "number"));
}

/** "SslNew" -> "SSL_NEW", "Http1" -> "HTTP1". */
const screaming = (member: string) => member.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toUpperCase();

describe.each(TWINS)("%s mirrors enum %s", (tsName, cName, prefix) => {
  const c = headerEnum(cName);
  const ts = tsEnum(tsName);

  test("the header's enum is read, with explicit values", () => {
    expect(c.size).toBeGreaterThan(1);
    for (const [name, value] of c) {
      expect(name.startsWith(prefix)).toBe(true);
      expect({ name, value: Number.isInteger(value) }).toEqual({ name, value: true });
    }
  });

  test("every TypeScript member is the header's value, as generated", () => {
    expect(ts.size).toBeGreaterThan(1);
    for (const [member, value] of ts) {
      const cMember = prefix + screaming(member);
      expect({ member, cMember, inHeader: c.has(cMember) }).toEqual({ member, cMember, inHeader: true });
      expect({ member, value }).toEqual({ member, value: c.get(cMember)! });
      expect({ member, value }).toEqual({ member, value: generated[cMember] as number });
    }
  });

  test("every value of the header's enum has a TypeScript twin", () => {
    const twinned = new Set([...ts.keys()].map((m) => prefix + screaming(m)));
    const missing = [...c.keys()].filter((name) => !twinned.has(name));
    expect(missing).toEqual([]);
    // One name per value on both sides: no two members of one side share a value.
    expect(new Set(ts.values()).size).toBe(ts.size);
    expect(new Set(c.values()).size).toBe(c.size);
  });
});

test("the hand enums are the ones checked here", async () => {
  const source = await Bun.file(`${ROOT}/src/bpf/events.ts`).text();
  const declared = [...source.matchAll(/^export\s+(?:const\s+)?enum\s+(\w+)/gm)].map((m) => m[1]);
  expect(declared.sort()).toEqual(TWINS.map(([ts]) => ts).sort());
});
