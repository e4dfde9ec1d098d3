// Micro benchmark of the HPACK decoder alone. The header blocks are real: a browser-like page
// load (a document, then scripts, styles, images and API calls, 100 requests on one connection)
// sent by Bun's node:http2 client to a local socket that only records, so the encoding choices
// (Huffman, what gets indexed) are a real encoder's. Prints figures only (header blocks/s and
// MB/s of HPACK bytes, median of several rounds); it passes or fails nothing.
//
//   bun bench/hpack.ts [--blocks N] [--rounds R]
//
// Scenarios:
//   connection, table reused — the 100 blocks in order with one decoder: the first carries
//                               every header as a Huffman literal, later ones are mostly indexed
//   first block, cold        — only the first block, a new decoder each time: all Huffman literals
import { parseArgs } from "node:util";
import http2 from "node:http2";
import net from "node:net";
import { createHpackDecoder } from "../src/protocols/http2/hpack.ts";

const { values } = parseArgs({
  args: Bun.argv.slice(2),
  options: { blocks: { type: "string", default: "1000000" }, rounds: { type: "string", default: "7" } },
});
const totalBlocks = Number(values.blocks);
const rounds = Number(values.rounds);
const REQUESTS = 100;

const common = {
  "user-agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
  "accept-language": "en-US,en;q=0.9,de;q=0.8",
  "accept-encoding": "gzip, deflate, br, zstd",
  "sec-ch-ua": '"Chromium";v="124", "Google Chrome";v="124", "Not-A.Brand";v="99"',
  "sec-ch-ua-mobile": "?0",
  "sec-ch-ua-platform": '"Linux"',
  cookie: "_ga=GA1.1.1838245.1716200000; session=8f2c1e0b7a9d4c3e5f6a7b8c9d0e1f2a; theme=dark; consent=analytics:1,ads:0",
};
const kinds = [
  { path: (i: number) => `/assets/app.${i.toString(16).padStart(6, "0")}.js`, accept: "*/*", dest: "script" },
  { path: (i: number) => `/assets/style.${i.toString(16).padStart(6, "0")}.css`, accept: "text/css,*/*;q=0.1", dest: "style" },
  { path: (i: number) => `/img/product-${i}.webp?w=640&q=75`, accept: "image/avif,image/webp,image/apng,image/*,*/*;q=0.8", dest: "image" },
  { path: (i: number) => `/api/v2/items?page=${i}&sort=-updated_at&fields=id,name,price`, accept: "application/json", dest: "empty" },
];
function request(i: number): http2.OutgoingHttpHeaders {
  if (i === 0) {
    return {
      ":path": "/shop/index.html",
      ...common,
      accept: "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8",
      "sec-fetch-dest": "document",
      "upgrade-insecure-requests": "1",
    };
  }
  const k = kinds[i % kinds.length]!;
  const headers: http2.OutgoingHttpHeaders = { ":path": k.path(i), ...common, accept: k.accept, "sec-fetch-dest": k.dest, referer: "https://shop.example.com/shop/index.html" };
  if (k.dest === "empty") headers["x-request-id"] = crypto.randomUUID();
  return headers;
}

/** The client side's HEADERS payloads (no CONTINUATION needed at this size), in order. */
async function record(): Promise<Uint8Array[]> {
  const chunks: Buffer[] = [];
  const server = net.createServer((socket) => {
    socket.write(Buffer.from([0, 0, 0, 0x4, 0, 0, 0, 0, 0])); // an empty SETTINGS frame
    socket.on("data", (d: Buffer) => chunks.push(d));
    socket.on("error", () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const client = http2.connect(`http://127.0.0.1:${(server.address() as net.AddressInfo).port}`);
  client.on("error", () => {});
  for (let i = 0; i < REQUESTS; i++) client.request(request(i), { endStream: true }).on("error", () => {});
  try {
    for (const deadline = Date.now() + 10_000; Date.now() < deadline; await Bun.sleep(10)) {
      const wire = Buffer.concat(chunks);
      const blocks: Uint8Array[] = [];
      for (let at = 24; at + 9 <= wire.length; ) {
        const length = wire.readUIntBE(at, 3);
        if (at + 9 + length > wire.length) break;
        if (wire[at + 3] === 0x1) {
          if ((wire[at + 4]! & 0x2c) !== 0x4) throw new Error("expected HEADERS with END_HEADERS, no padding or priority");
          blocks.push(new Uint8Array(wire.subarray(at + 9, at + 9 + length)));
        }
        at += 9 + length;
      }
      if (blocks.length === REQUESTS) return blocks;
    }
    throw new Error("the client did not send every request");
  } finally {
    client.destroy();
    server.close();
  }
}

const blocks = await record();
const bytes = (bs: Uint8Array[]) => bs.reduce((n, b) => n + b.length, 0);

interface Scenario {
  name: string;
  /** Decodes one pass; returns the fields decoded (to keep the work observable). */
  pass(): number;
  blocksPerPass: number;
  bytesPerPass: number;
}
const scenarios: Scenario[] = [
  {
    name: "connection, table reused",
    pass() {
      const d = createHpackDecoder();
      let n = 0;
      for (const b of blocks) n += d.decode(b).length;
      return n;
    },
    blocksPerPass: blocks.length,
    bytesPerPass: bytes(blocks),
  },
  {
    name: "first block, cold",
    pass: () => createHpackDecoder().decode(blocks[0]!).length,
    blocksPerPass: 1,
    bytesPerPass: blocks[0]!.length,
  },
];

function round(s: Scenario): { seconds: number; fields: number; passes: number } {
  const passes = Math.ceil(totalBlocks / s.blocksPerPass);
  let fields = 0;
  const t0 = performance.now();
  for (let i = 0; i < passes; i++) fields += s.pass();
  return { seconds: (performance.now() - t0) / 1000, fields, passes };
}

const perBlock = bytes(blocks) / blocks.length;
console.log(
  `hpack decoder, ${totalBlocks} header blocks per round, median of ${rounds} rounds (bun ${Bun.version}); ` +
    `${blocks.length} real request blocks: first ${blocks[0]!.length} B, mean ${perBlock.toFixed(1)} B`,
);
for (const s of scenarios) {
  round(s); // warm-up
  const results = Array.from({ length: rounds }, () => round(s)).sort((a, b) => a.seconds - b.seconds);
  const median = results[results.length >> 1]!;
  const blockRate = (median.passes * s.blocksPerPass) / median.seconds;
  const mbps = (median.passes * s.bytesPerPass) / 1e6 / median.seconds;
  const fieldRate = median.fields / median.seconds;
  console.log(
    `  ${s.name.padEnd(26)} ${Math.round(blockRate).toLocaleString("en-US").padStart(11)} blocks/s  ${mbps.toFixed(1).padStart(7)} MB/s  ${Math.round(fieldRate).toLocaleString("en-US").padStart(12)} fields/s`,
  );
}
