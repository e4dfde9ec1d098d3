// `tapwire inspect FILE [--json]`: what tapwire sees in a file — ELF kind, Go version and
// module, the functions it would probe with their file offsets (and RETs), where each probe
// goes (the instruction, how the kernel runs it, and why that place), OpenSSL symbols, and
// why it would not probe the file when it would not.
import { openElf, ElfError } from "../elfkit/elf.ts";
import { loadDecoder } from "../elfkit/decode.ts";
import { goTlsTargets } from "../probes/go-tls-targets.ts";
import { goRuntimeLayout, GoLayoutError, type GoRuntimeLayout } from "../probes/go-runtime-layout.ts";
import { opensslFunctions, opensslProbes, opensslVersion } from "../probes/openssl.ts";
import { gnutlsFunctions, gnutlsProbes, gnutlsVersion } from "../probes/gnutls.ts";
import { isNssLibssl, nssProbes, nssVersion, nsprBeside } from "../probes/nss.ts";
import type { Placement } from "../probes/uprobe-placement.ts";
import { SetupError } from "../bpf/libbpf.ts";
import { fileError } from "./file-errors.ts";

const GO_RETS_WHY = "the result is known only at the RETs (a uretprobe breaks when Go moves a goroutine's stack); each RET is single-stepped";

const ET_NAMES: Record<number, string> = { 1: "relocatable", 2: "executable", 3: "shared object or PIE executable", 4: "core" };

export async function inspect(file: string, json: boolean): Promise<number> {
  let elf;
  try {
    elf = openElf(file);
  } catch (e) {
    if (e instanceof ElfError) throw new SetupError(fileError(file, new Error(e.message)));
    throw e;
  }
  try {
    await loadDecoder();
    const openssl = opensslFunctions(file);
    const gnutls = openssl.length ? [] : gnutlsFunctions(file);
    const nss = !openssl.length && isNssLibssl(file);
    const nspr = nss ? nsprBeside(file) : undefined;
    const go = goTlsTargets(elf);
    let layout: GoRuntimeLayout | undefined;
    let layoutError: string | undefined;
    if (go?.read) {
      try {
        const pclntab = (elf.section(".gopclntab") ?? elf.section(".data.rel.ro.gopclntab"))!;
        layout = goRuntimeLayout(elf, go.buildInfo.release, pclntab.addr);
      } catch (e) {
        if (!(e instanceof GoLayoutError)) throw e;
        layoutError = e.message;
      }
    }
    const placed = (p: Placement) => ({ vaddr: p.vaddr, instruction: p.instruction, class: p.class, why: p.why });
    interface ProbeReport {
      library: string;
      /** The functions whose calls the probe sees. */
      functions: string[];
      fileOffset: number;
      place: ReturnType<typeof placed>;
      /** "uretprobe", or the RETs' file offsets. */
      returns?: "uretprobe" | number[];
      /** Why the returns are probed there. */
      returnsWhy?: string;
    }
    const probes: ProbeReport[] = [
      ...(openssl.length ? opensslProbes(file, openssl, "chosen") : []).map((p) => ({
        library: "openssl",
        functions: p.covers,
        fileOffset: p.offset,
        place: placed(p.place),
        returns: p.returns ? ("uretprobe" as const) : undefined,
      })),
      ...(gnutls.length ? gnutlsProbes(file, gnutls, "chosen") : []).map((p) => ({
        library: "gnutls",
        functions: [p.name],
        fileOffset: p.offset,
        place: placed(p.place),
        returns: p.returns ? ("uretprobe" as const) : undefined,
      })),
      ...(nss && nspr ? nssProbes(file, nspr) : []).map((p) => ({
        library: p.file === file ? "nss" : `nss (${p.file})`,
        functions: [p.name],
        fileOffset: p.offset,
        place: placed(p.place),
        returns: p.returns ? ("uretprobe" as const) : undefined,
      })),
      ...[go?.write, go?.read].flatMap((f) =>
        !f
          ? []
          : [
              {
                library: "go",
                functions: [f.name],
                fileOffset: f.fileOffset,
                place: placed(f.entry),
                ...(f.probedRets.length ? { returns: f.probedRets, returnsWhy: GO_RETS_WHY } : {}),
              },
            ],
      ),
    ];
    const notProbed = layoutError
      ? `Go binary not supported: ${layoutError}`
      : nss && !nspr
      ? "NSS without libnspr4.so beside it"
      : probes.length
      ? undefined
      : go?.unsupported
        ? `Go binary not supported: ${go.unsupported}`
        : go
          ? "Go binary without crypto/tls"
          : "not OpenSSL (no exported SSL_read/SSL_write), GnuTLS (gnutls_record_send/recv), NSS (SSL_ImportFD) or Go";
    const report = {
      file,
      elf: { machine: elf.machine, type: ET_NAMES[elf.type] ?? `type ${elf.type}`, size: elf.size },
      go: go
        ? {
            version: go.buildInfo.version,
            path: go.buildInfo.path,
            module: go.buildInfo.mainModule,
            moduleVersion: go.buildInfo.mainModuleVersion,
            // How the probes find a connection's socket: tls.Conn -> *net.TCPConn -> fd.
            layout: layout && { source: layout.source, tcpConnItab: layout.tcpConnItab, ...layout.conn },
          }
        : undefined,
      openssl: openssl.length ? { version: opensslVersion(file) } : undefined,
      gnutls: gnutls.length ? { version: gnutlsVersion(file) } : undefined,
      nss: nss ? { version: nssVersion(file), nspr } : undefined,
      probes,
      notProbed,
    };
    if (json) {
      console.log(JSON.stringify(report));
      return 0;
    }
    const hex = (n: number) => `0x${n.toString(16)}`;
    console.log(`${file}: ELF ${report.elf.machine} ${report.elf.type}, ${report.elf.size} bytes`);
    if (report.go) console.log(`Go: ${report.go.version}, package ${report.go.path || "?"}, module ${report.go.module || "?"} ${report.go.moduleVersion}`.trimEnd());
    if (layout) {
      const c = layout.conn;
      console.log(
        `Go socket path (offsets from ${layout.source}): tls.Conn.conn +${c.tlsConnConn}, itab (net.Conn, *net.TCPConn) ` +
          `${layout.tcpConnItab === undefined ? "absent" : hex(layout.tcpConnItab)}, TCPConn.fd +${c.tcpConnFd}, netFD.Sysfd +${c.netFdSysfd}`,
      );
    }
    if (report.openssl) console.log(`OpenSSL: ${report.openssl.version}`);
    if (report.gnutls) console.log(`GnuTLS: ${report.gnutls.version}`);
    if (report.nss) console.log(`NSS: ${report.nss.version}, with ${report.nss.nspr ?? "no libnspr4.so beside it"}`);
    for (const p of probes) {
      const returns = p.returns === "uretprobe" ? "; uretprobe" : p.returns ? `; returns at ${p.returns.map(hex).join(", ")}` : "";
      console.log(`probe ${p.functions.join(" + ")}${p.library.startsWith("nss (") ? ` in ${p.library.slice(5, -1)}` : ""} at file offset ${hex(p.fileOffset)}${returns}`);
      console.log(`  place ${hex(p.place.vaddr)}: ${p.place.instruction} (${p.place.class}) — ${p.place.why}`);
      if (p.returnsWhy) console.log(`  returns: ${p.returnsWhy}`);
    }
    if (notProbed) console.log(`not probed: ${notProbed}`);
    return 0;
  } finally {
    elf.close();
  }
}
