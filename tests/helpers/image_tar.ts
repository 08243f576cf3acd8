/**
 * Test helper: writes tar archives (ustar, with pax or GNU long-name records) from a list of
 * entries, so tests build image layers byte by byte, including malicious ones no real tool would
 * produce.
 */

/** One member of a test archive. */
export interface TarSpec {
  path: string;
  type?: "file" | "dir" | "symlink" | "hardlink" | "chardev" | "blockdev" | "fifo";
  data?: Uint8Array | string;
  mode?: number;
  uid?: number;
  gid?: number;
  /** Seconds since the epoch. */
  mtime?: number;
  linkpath?: string;
  devmajor?: number;
  devminor?: number;
  xattrs?: Record<string, string>;
}

const FLAGS = {
  file: "0",
  hardlink: "1",
  symlink: "2",
  chardev: "3",
  blockdev: "4",
  dir: "5",
  fifo: "6",
} as const;

const encoder = new TextEncoder();

/** Builds a tar archive; names longer than 100 bytes get pax records (or GNU `L`/`K` ones). */
export function makeTar(entries: TarSpec[], opts: { longNames?: "pax" | "gnu" } = {}): Uint8Array {
  const blocks: Uint8Array[] = [];
  for (const e of entries) {
    const type = e.type ?? "file";
    const data = typeof e.data === "string" ? encoder.encode(e.data) : e.data ?? new Uint8Array();
    const path = encoder.encode(e.path);
    const link = encoder.encode(e.linkpath ?? "");
    const pax: Array<[string, Uint8Array]> = [];
    if (path.byteLength > 100 || link.byteLength > 100) {
      if (opts.longNames === "gnu") {
        if (path.byteLength > 100) {
          blocks.push(...record("././@LongLink", "L", nulTerminated(path)));
        }
        if (link.byteLength > 100) {
          blocks.push(...record("././@LongLink", "K", nulTerminated(link)));
        }
      } else {
        if (path.byteLength > 100) pax.push(["path", path]);
        if (link.byteLength > 100) pax.push(["linkpath", link]);
      }
    }
    for (const [k, v] of Object.entries(e.xattrs ?? {})) {
      pax.push([`SCHILY.xattr.${k}`, encoder.encode(v)]);
    }
    if (pax.length > 0) blocks.push(...record("PaxHeader", "x", paxData(pax)));
    blocks.push(header({
      name: path.subarray(0, 100),
      flag: FLAGS[type],
      mode: e.mode ?? (type === "dir" ? 0o755 : 0o644),
      uid: e.uid ?? 0,
      gid: e.gid ?? 0,
      size: type === "file" ? data.byteLength : 0,
      mtime: e.mtime ?? 1_700_000_000,
      linkname: link.subarray(0, 100),
      devmajor: e.devmajor ?? 0,
      devminor: e.devminor ?? 0,
    }));
    if (type === "file") blocks.push(...padded(data));
  }
  blocks.push(new Uint8Array(1024));
  return concat(blocks);
}

/** gzip of some bytes. */
export async function gzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
    new CompressionStream("gzip"),
  );
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

function record(name: string, flag: string, data: Uint8Array): Uint8Array[] {
  return [
    header({
      name: encoder.encode(name),
      flag,
      mode: 0o644,
      uid: 0,
      gid: 0,
      size: data.byteLength,
      mtime: 0,
      linkname: new Uint8Array(),
      devmajor: 0,
      devminor: 0,
    }),
    ...padded(data),
  ];
}

function paxData(records: Array<[string, Uint8Array]>): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const [key, value] of records) {
    const body = concat([encoder.encode(` ${key}=`), value, encoder.encode("\n")]);
    let len = body.byteLength + 1;
    while (String(len).length + body.byteLength !== len) len = String(len).length + body.byteLength;
    parts.push(encoder.encode(String(len)), body);
  }
  return concat(parts);
}

interface Header {
  name: Uint8Array;
  flag: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkname: Uint8Array;
  devmajor: number;
  devminor: number;
}

function header(h: Header): Uint8Array {
  const b = new Uint8Array(512);
  b.set(h.name, 0);
  octal(b, 100, 8, h.mode);
  octal(b, 108, 8, h.uid);
  octal(b, 116, 8, h.gid);
  octal(b, 124, 12, h.size);
  octal(b, 136, 12, h.mtime);
  b[156] = h.flag.charCodeAt(0);
  b.set(h.linkname, 157);
  b.set(encoder.encode("ustar\x0000"), 257);
  octal(b, 329, 8, h.devmajor);
  octal(b, 337, 8, h.devminor);
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const x of b) sum += x;
  octal(b, 148, 8, sum);
  return b;
}

function octal(b: Uint8Array, off: number, len: number, value: number): void {
  b.set(encoder.encode(value.toString(8).padStart(len - 1, "0")), off);
  b[off + len - 1] = 0;
}

function padded(data: Uint8Array): Uint8Array[] {
  const pad = (512 - (data.byteLength % 512)) % 512;
  return pad === 0 ? [data] : [data, new Uint8Array(pad)];
}

function nulTerminated(bytes: Uint8Array): Uint8Array {
  return concat([bytes, new Uint8Array(1)]);
}

/** Joins byte arrays. */
export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.byteLength;
  }
  return out;
}
