/**
 * A streaming tar writer, the counterpart of tar.ts: ustar headers, with a pax extended header
 * before an entry whose path, link target, size, ids or times do not fit ustar's fields, or that
 * has extended attributes (`SCHILY.xattr.*`, as GNU tar and Docker write them). Bodies are
 * streamed, so an archive of any size is written in constant memory. The same entries give the
 * same bytes (no clock, no host names): an image layer written twice has one digest.
 */
import type { EntryType } from "./tar.ts";

/** What one member says about itself; `TarEntry` of tar.ts with the optional parts optional. */
export interface TarHeader {
  path: string;
  type: EntryType;
  /** Permission bits including setuid, setgid and sticky (`0o7777`). */
  mode: number;
  uid?: number;
  gid?: number;
  /** Body length, regular files only. */
  size?: number;
  /** Seconds since the epoch (whole seconds are written; pax carries fractions). */
  mtime?: number;
  linkpath?: string;
  devmajor?: number;
  devminor?: number;
  xattrs?: Map<string, Uint8Array>;
  uname?: string;
  gname?: string;
}

const BLOCK = 512;
const enc = new TextEncoder();
const TYPE_FLAG: Record<EntryType, string> = {
  file: "0",
  hardlink: "1",
  symlink: "2",
  chardev: "3",
  blockdev: "4",
  dir: "5",
  fifo: "6",
};

/** Raised when an entry cannot be written as given (a body of the wrong length, say). */
export class TarWriteError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TarWriteError";
  }
}

/**
 * Writes members one at a time to `sink`, then the end-of-archive marker on `close()`. Give each
 * regular file its body as bytes or as a stream of exactly `size` bytes.
 */
export class TarWriter {
  #sink: WritableStreamDefaultWriter<Uint8Array>;
  #closed = false;

  constructor(sink: WritableStream<Uint8Array> | WritableStreamDefaultWriter<Uint8Array>) {
    this.#sink = sink instanceof WritableStream ? sink.getWriter() : sink;
  }

  /** Appends one member. A directory's path gets its trailing slash here. */
  async add(header: TarHeader, body?: Uint8Array | ReadableStream<Uint8Array>): Promise<void> {
    if (this.#closed) throw new TarWriteError("the archive is closed");
    const size = header.type === "file" ? header.size ?? byteLength(body) : 0;
    if (header.type !== "file" && body !== undefined) {
      throw new TarWriteError(`${header.path}: only a regular file has a body`);
    }
    if (size > 0 && body === undefined) throw new TarWriteError(`${header.path}: no body`);
    let path = header.path;
    if (header.type === "dir" && !path.endsWith("/")) path += "/";
    const pax = paxRecords(header, path, size);
    if (pax.length > 0) {
      const data = concat(pax);
      await this.#write(ustarHeader({
        name: paxName(path),
        type: "x",
        mode: 0o644,
        size: data.byteLength,
      }));
      await this.#writeBody(data, data.byteLength, path);
    }
    await this.#write(ustarHeader({
      name: path,
      type: TYPE_FLAG[header.type],
      mode: header.mode & 0o7777,
      uid: header.uid ?? 0,
      gid: header.gid ?? 0,
      size,
      mtime: Math.floor(header.mtime ?? 0),
      linkpath: header.linkpath ?? "",
      uname: header.uname ?? "",
      gname: header.gname ?? "",
      devmajor: header.devmajor ?? 0,
      devminor: header.devminor ?? 0,
    }));
    if (header.type === "file") await this.#writeBody(body ?? new Uint8Array(), size, path);
  }

  /** Writes the two zero blocks that end an archive, and closes the sink. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#sink.write(new Uint8Array(BLOCK * 2));
    await this.#sink.close();
  }

  /** Gives the sink up without the end marker (an archive that failed half-way). */
  async abort(reason?: unknown): Promise<void> {
    this.#closed = true;
    await this.#sink.abort(reason).catch(() => {});
  }

  #write(bytes: Uint8Array): Promise<void> {
    return this.#sink.write(bytes);
  }

  async #writeBody(
    body: Uint8Array | ReadableStream<Uint8Array>,
    size: number,
    path: string,
  ): Promise<void> {
    let written = 0;
    if (body instanceof Uint8Array) {
      if (body.byteLength !== size) {
        throw new TarWriteError(`${path}: the body is ${body.byteLength} bytes, not ${size}`);
      }
      if (size > 0) await this.#write(body);
      written = size;
    } else {
      for await (const chunk of body) {
        written += chunk.byteLength;
        if (written > size) {
          throw new TarWriteError(`${path}: the file grew past ${size} bytes while archived`);
        }
        await this.#write(chunk);
      }
      if (written !== size) {
        throw new TarWriteError(`${path}: the file shrank to ${written} of ${size} bytes`);
      }
    }
    const pad = (BLOCK - (size % BLOCK)) % BLOCK;
    if (pad > 0) await this.#write(new Uint8Array(pad));
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

function byteLength(body: Uint8Array | ReadableStream<Uint8Array> | undefined): number {
  if (body === undefined) return 0;
  if (body instanceof Uint8Array) return body.byteLength;
  throw new TarWriteError("a streamed body needs its size in the header");
}

const USTAR_MAX_OCTAL = (digits: number) => 8 ** digits - 1;

/** The pax records an entry needs ("LEN key=value\n"), in a fixed order. */
function paxRecords(h: TarHeader, path: string, size: number): Uint8Array[] {
  const records: [string, string][] = [];
  if (splitPath(path) === null) records.push(["path", path]);
  const link = h.linkpath ?? "";
  if (enc.encode(link).byteLength > 100 || !isAscii(link)) records.push(["linkpath", link]);
  if (size > USTAR_MAX_OCTAL(11)) records.push(["size", String(size)]);
  if ((h.uid ?? 0) > USTAR_MAX_OCTAL(7)) records.push(["uid", String(h.uid)]);
  if ((h.gid ?? 0) > USTAR_MAX_OCTAL(7)) records.push(["gid", String(h.gid)]);
  const mtime = h.mtime ?? 0;
  if (mtime < 0 || mtime > USTAR_MAX_OCTAL(11) || !Number.isInteger(mtime)) {
    records.push(["mtime", formatTime(mtime)]);
  }
  for (const name of ["uname", "gname"] as const) {
    const v = h[name] ?? "";
    if (enc.encode(v).byteLength > 32 || !isAscii(v)) records.push([name, v]);
  }
  const out = records.map(([k, v]) => paxRecord(k, enc.encode(v)));
  for (const [name, value] of [...(h.xattrs ?? new Map())].sort(([a], [b]) => a < b ? -1 : 1)) {
    out.push(paxRecord(`SCHILY.xattr.${name}`, value));
  }
  return out;
}

/** One pax record, "LEN key=value\n", as bytes: values may be binary (xattrs). */
function paxRecord(key: string, value: Uint8Array): Uint8Array {
  const head = enc.encode(` ${key}=`);
  const restLength = head.byteLength + value.byteLength + 1;
  // The length counts its own digits.
  let length = restLength + 1;
  while (String(length).length + restLength !== length) length = String(length).length + restLength;
  const digits = enc.encode(String(length));
  const out = new Uint8Array(length);
  out.set(digits, 0);
  out.set(head, digits.byteLength);
  out.set(value, digits.byteLength + head.byteLength);
  out[length - 1] = 0x0a;
  return out;
}

function formatTime(seconds: number): string {
  if (Number.isInteger(seconds)) return String(seconds);
  return seconds.toFixed(9).replace(/0+$/, "");
}

function isAscii(s: string): boolean {
  // deno-lint-ignore no-control-regex
  return /^[\x00-\x7f]*$/.test(s);
}

/** ustar's name/prefix split of a path, or null when it cannot hold the path. */
function splitPath(path: string): { name: string; prefix: string } | null {
  if (!isAscii(path)) return null;
  if (path.length <= 100) return { name: path, prefix: "" };
  // The prefix ends at a slash; name gets the rest (at most 100), prefix at most 155.
  for (let i = path.length - 1; i > 0; i--) {
    if (path[i] !== "/") continue;
    const name = path.slice(i + 1);
    const prefix = path.slice(0, i);
    if (name.length > 100) return null;
    if (prefix.length <= 155 && name !== "") return { name, prefix };
  }
  return null;
}

/** The name of a pax header: GNU tar's `PaxHeaders` convention, short enough for ustar. */
function paxName(path: string): string {
  const base = path.replace(/\/$/, "").split("/").pop() ?? "";
  const asciiBase = isAscii(base) ? base.slice(0, 80) : "entry";
  return `PaxHeaders/${asciiBase}`;
}

interface UstarFields {
  name: string;
  type: string;
  mode: number;
  uid?: number;
  gid?: number;
  size: number;
  mtime?: number;
  linkpath?: string;
  uname?: string;
  gname?: string;
  devmajor?: number;
  devminor?: number;
}

/** One 512-byte ustar header; fields that do not fit are clamped (pax carries the truth). */
function ustarHeader(f: UstarFields): Uint8Array {
  const block = new Uint8Array(BLOCK);
  const split = splitPath(f.name) ?? { name: asciiTail(f.name, 100), prefix: "" };
  putString(block, 0, 100, split.name);
  putOctal(block, 100, 8, f.mode);
  putOctal(block, 108, 8, clamp(f.uid ?? 0, 7));
  putOctal(block, 116, 8, clamp(f.gid ?? 0, 7));
  putOctal(block, 124, 12, clamp(f.size, 11));
  putOctal(block, 136, 12, clamp(Math.max(0, f.mtime ?? 0), 11));
  block.fill(0x20, 148, 156); // the checksum field counts as spaces
  putString(block, 156, 1, f.type);
  putString(block, 157, 100, asciiTail(f.linkpath ?? "", 100));
  putString(block, 257, 6, "ustar");
  putString(block, 263, 2, "00");
  putString(block, 265, 32, asciiTail(f.uname ?? "", 32));
  putString(block, 297, 32, asciiTail(f.gname ?? "", 32));
  putOctal(block, 329, 8, f.devmajor ?? 0);
  putOctal(block, 337, 8, f.devminor ?? 0);
  putString(block, 345, 155, split.prefix);
  const sum = block.reduce((a, b) => a + b, 0);
  putString(block, 148, 8, `${sum.toString(8).padStart(6, "0")}\0 `);
  return block;
}

function clamp(n: number, digits: number): number {
  return Math.min(n, USTAR_MAX_OCTAL(digits));
}

function asciiTail(s: string, max: number): string {
  return isAscii(s) && s.length <= max ? s : "";
}

function putString(block: Uint8Array, offset: number, length: number, s: string): void {
  block.set(enc.encode(s).subarray(0, length), offset);
}

function putOctal(block: Uint8Array, offset: number, length: number, n: number): void {
  putString(block, offset, length, `${n.toString(8).padStart(length - 1, "0")}\0`);
}
