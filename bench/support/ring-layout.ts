// Records laid out as the kernel's ring buffer holds them (an 8-byte header, the record,
// padding to 8), for the replay benchmarks.

export interface RingRecording {
  buf: Uint8Array;
  view: DataView;
  offsets: number[];
  lengths: number[];
}

export function layOutRecords(records: Uint8Array[]): RingRecording {
  let size = 0;
  for (const r of records) size += 8 + ((r.length + 7) & ~7);
  const buf = new Uint8Array(size);
  const offsets: number[] = [];
  const lengths: number[] = [];
  let at = 0;
  for (const r of records) {
    buf.set(r, at + 8);
    offsets.push(at + 8);
    lengths.push(r.length);
    at += 8 + ((r.length + 7) & ~7);
  }
  return { buf, view: new DataView(buf.buffer), offsets, lengths };
}
