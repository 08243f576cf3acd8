/**
 * A streaming tar reader: ustar, pax extended headers (local and global: path, linkpath, size,
 * uid, gid, mtime, SCHILY.xattr.*) and GNU long names (`L`, `K`). Entries come one at a time;
 * a body that is not read is skipped. Nothing is buffered beyond one stream chunk, so a layer of
 * any size unpacks in constant memory.
 */

/** What an entry creates. */
export type EntryType = "file" | "hardlink" | "symlink" | "chardev" | "blockdev" | "dir" | "fifo";

/** One archive member, with pax and GNU extensions already applied. */
export interface TarEntry {
  /** Path as stored (not yet cleaned). */
  path: string;
  type: EntryType;
  /** Permission bits including setuid, setgid and sticky (`0o7777`). */
  mode: number;
  uid: number;
  gid: number;
  /** Body length; 0 for everything but regular files. */
  size: number;
  /** Modification time in seconds since the epoch (pax gives fractions). */
  mtime: number;
  /** Symlink target or hard link target path. */
  linkpath: string;
  devmajor: number;
  devminor: number;
  /** Extended attributes from pax `SCHILY.xattr.<name>` records. */
  xattrs: Map<string, Uint8Array>;
}

/** Raised for anything that is not a well-formed tar archive. */
export class TarError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TarError";
  }
}

const BLOCK = 512;
const EMPTY = new Uint8Array(0);
const utf8 = new TextDecoder("utf-8", { fatal: true });
// Types whose size field never announces a body (same rule as Go's archive/tar).
const HEADER_ONLY: ReadonlySet<EntryType> = new Set([
  "hardlink",
  "symlink",
  "chardev",
  "blockdev",
  "dir",
  "fifo",
]);

/** Reads exactly the bytes asked for out of a chunked stream. */
class ByteReader {
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #chunk: Uint8Array = EMPTY;
  #off = 0;
  #eof = false;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.getReader();
  }

  /** Makes sure the current chunk has unread bytes; false at end of stream. */
  async #fill(): Promise<boolean> {
    while (this.#off >= this.#chunk.byteLength) {
      if (this.#eof) return false;
      const { done, value } = await this.#reader.read();
      if (done) {
        this.#eof = true;
        return false;
      }
      this.#chunk = value;
      this.#off = 0;
    }
    return true;
  }

  /** Exactly `n` bytes, or null when the stream ended before the first byte. */
  async readExact(n: number): Promise<Uint8Array | null> {
    if (!await this.#fill()) return null;
    if (this.#chunk.byteLength - this.#off >= n) {
      const out = this.#chunk.subarray(this.#off, this.#off + n);
      this.#off += n;
      return out;
    }
    const out = new Uint8Array(n);
    let have = 0;
    while (have < n) {
      if (!await this.#fill()) throw new TarError("unexpected end of archive");
      const take = Math.min(n - have, this.#chunk.byteLength - this.#off);
      out.set(this.#chunk.subarray(this.#off, this.#off + take), have);
      this.#off += take;
      have += take;
    }
    return out;
  }

  /** Yields the next `n` bytes as views into the stream's chunks (valid until the next read). */
  async *chunks(n: number): AsyncGenerator<Uint8Array> {
    let left = n;
    while (left > 0) {
      if (!await this.#fill()) throw new TarError("unexpected end of archive");
      const take = Math.min(left, this.#chunk.byteLength - this.#off);
      const view = this.#chunk.subarray(this.#off, this.#off + take);
      this.#off += take;
      left -= take;
      yield view;
    }
  }

  async skip(n: number): Promise<void> {
    for await (const _ of this.chunks(n)) { /* discard */ }
  }

  /** Reads to the end, so that whatever hashes the stream sees every byte. */
  async drain(): Promise<void> {
    this.#off = this.#chunk.byteLength;
    while (await this.#fill()) this.#off = this.#chunk.byteLength;
  }

  async cancel(reason?: unknown): Promise<void> {
    await this.#reader.cancel(reason).catch(() => {});
  }
}

/**
 * Iterates the members of a tar stream: `for await (const entry of reader)`; read a regular
 * file's data with `reader.body()` before asking for the next entry.
 */
export class TarReader implements AsyncIterable<TarEntry> {
  #in: ByteReader;
  #bodyLeft = 0;
  #padding = 0;
  #global = new Map<string, Uint8Array>();
  #ended = false;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.#in = new ByteReader(stream);
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<TarEntry> {
    try {
      for (let entry = await this.next(); entry; entry = await this.next()) yield entry;
    } catch (err) {
      await this.#in.cancel(err);
      throw err;
    }
  }

  /** Stops reading: cancels the underlying stream (closing a download). */
  async cancel(reason?: unknown): Promise<void> {
    this.#ended = true;
    await this.#in.cancel(reason);
  }

  /** The data of the entry last returned by `next()`, as chunks. */
  async *body(): AsyncGenerator<Uint8Array> {
    while (this.#bodyLeft > 0) {
      const n = this.#bodyLeft;
      for await (const chunk of this.#in.chunks(n)) {
        this.#bodyLeft -= chunk.byteLength;
        yield chunk;
      }
    }
  }

  /** The next member, or null after the end-of-archive marker (the rest is drained). */
  async next(): Promise<TarEntry | null> {
    if (this.#ended) return null;
    await this.#in.skip(this.#bodyLeft + this.#padding);
    this.#bodyLeft = this.#padding = 0;

    let local = new Map<string, Uint8Array>();
    let longName: string | undefined;
    let longLink: string | undefined;
    for (;;) {
      const header = await this.#in.readExact(BLOCK);
      if (header === null) throw new TarError("unexpected end of archive (no end marker)");
      if (isZeroBlock(header)) {
        // End of archive. Read on to the real end: the layer's digest covers every byte.
        this.#ended = true;
        await this.#in.drain();
        return null;
      }
      verifyChecksum(header);
      const flag = String.fromCharCode(header[156] ?? 0);
      let size = parseNumeric(header.subarray(124, 136), "size");
      if (flag === "x" || flag === "g" || flag === "L" || flag === "K") {
        if (size > 1 << 20) throw new TarError(`extended header of ${size} bytes is too large`);
        const data = await this.#readPadded(size);
        if (flag === "x") local = parsePax(data);
        else if (flag === "g") { for (const [k, v] of parsePax(data)) this.#global.set(k, v); }
        else if (flag === "L") longName = decodeName(cString(data));
        else longLink = decodeName(cString(data));
        continue;
      }

      const pax = new Map([...this.#global, ...local]);
      const magic = latin1(header.subarray(257, 263));
      let path = decodeName(cString(header.subarray(0, 100)));
      if (magic === "ustar\0") {
        const prefix = decodeName(cString(header.subarray(345, 500)));
        if (prefix !== "") path = `${prefix}/${path}`;
      }
      if (longName !== undefined) path = longName;
      if (pax.has("path")) path = decodeName(pax.get("path")!);
      let linkpath = decodeName(cString(header.subarray(157, 257)));
      if (longLink !== undefined) linkpath = longLink;
      if (pax.has("linkpath")) linkpath = decodeName(pax.get("linkpath")!);
      if (pax.has("size")) size = paxNumber(pax, "size");
      for (const key of pax.keys()) {
        if (key.startsWith("GNU.sparse.")) {
          throw new TarError(`sparse file "${path}" is not supported`);
        }
      }

      const type = entryType(flag, path);
      const xattrs = new Map<string, Uint8Array>();
      for (const [key, value] of pax) {
        if (key.startsWith("SCHILY.xattr.")) xattrs.set(key.slice(13), value);
      }
      const entry: TarEntry = {
        path,
        type,
        mode: parseNumeric(header.subarray(100, 108), "mode") & 0o7777,
        uid: pax.has("uid")
          ? paxNumber(pax, "uid")
          : parseNumeric(header.subarray(108, 116), "uid"),
        gid: pax.has("gid")
          ? paxNumber(pax, "gid")
          : parseNumeric(header.subarray(116, 124), "gid"),
        size: HEADER_ONLY.has(type) ? 0 : size,
        mtime: pax.has("mtime")
          ? paxNumber(pax, "mtime")
          : parseNumeric(header.subarray(136, 148), "mtime"),
        linkpath,
        devmajor: parseNumeric(header.subarray(329, 337), "devmajor"),
        devminor: parseNumeric(header.subarray(337, 345), "devminor"),
        xattrs,
      };
      this.#bodyLeft = entry.size;
      this.#padding = (BLOCK - (entry.size % BLOCK)) % BLOCK;
      return entry;
    }
  }

  async #readPadded(size: number): Promise<Uint8Array> {
    const data = size === 0 ? EMPTY : await this.#in.readExact(size);
    if (data === null) throw new TarError("unexpected end of archive");
    const copy = data.slice();
    await this.#in.skip((BLOCK - (size % BLOCK)) % BLOCK);
    return copy;
  }
}

function entryType(flag: string, path: string): EntryType {
  switch (flag) {
    case "0":
    case "7":
      return "file";
    case "\0":
      return path.endsWith("/") ? "dir" : "file";
    case "1":
      return "hardlink";
    case "2":
      return "symlink";
    case "3":
      return "chardev";
    case "4":
      return "blockdev";
    case "5":
      return "dir";
    case "6":
      return "fifo";
    default:
      throw new TarError(`entry "${path}" has unsupported type "${flag}"`);
  }
}

function isZeroBlock(block: Uint8Array): boolean {
  for (let i = 0; i < block.byteLength; i++) if (block[i] !== 0) return false;
  return true;
}

function verifyChecksum(header: Uint8Array): void {
  const stored = parseNumeric(header.subarray(148, 156), "checksum");
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : header[i]!;
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  if (stored !== unsigned && stored !== signed) {
    throw new TarError("invalid tar header (checksum mismatch)");
  }
}

/** Octal text, or GNU base-256 when the top bit is set (large sizes, big uids). */
function parseNumeric(field: Uint8Array, what: string): number {
  const first = field[0] ?? 0;
  if (first & 0x80) {
    if (first & 0x40) throw new TarError(`negative ${what} in tar header`);
    let value = first & 0x3f;
    for (let i = 1; i < field.byteLength; i++) value = value * 256 + field[i]!;
    if (!Number.isSafeInteger(value)) throw new TarError(`${what} in tar header is too large`);
    return value;
  }
  const text = latin1(field).replace(/\0.*$/s, "").trim();
  if (text === "") return 0;
  if (!/^[0-7]+$/.test(text)) throw new TarError(`invalid ${what} "${text}" in tar header`);
  return parseInt(text, 8);
}

function paxNumber(pax: Map<string, Uint8Array>, key: string): number {
  const text = latin1(pax.get(key)!);
  const value = Number(text);
  if (text === "" || !Number.isFinite(value) || value < 0) {
    throw new TarError(`invalid pax ${key} "${text}"`);
  }
  return value;
}

/** `<len> <key>=<value>\n` records; values stay bytes (xattr values are binary). */
function parsePax(data: Uint8Array): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  let pos = 0;
  while (pos < data.byteLength) {
    if (data[pos] === 0) break;
    const space = data.indexOf(0x20, pos);
    const len = space < 0 ? NaN : parseInt(latin1(data.subarray(pos, space)), 10);
    if (!Number.isSafeInteger(len) || len <= 0 || pos + len > data.byteLength) {
      throw new TarError("invalid pax extended header");
    }
    const record = data.subarray(space + 1, pos + len - 1); // drop the trailing newline
    const eq = record.indexOf(0x3d);
    if (eq < 0 || data[pos + len - 1] !== 0x0a) throw new TarError("invalid pax record");
    out.set(decodeName(record.subarray(0, eq)), record.slice(eq + 1));
    pos += len;
  }
  return out;
}

function cString(bytes: Uint8Array): Uint8Array {
  const nul = bytes.indexOf(0);
  return nul < 0 ? bytes : bytes.subarray(0, nul);
}

function latin1(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.byteLength; i++) s += String.fromCharCode(bytes[i]!);
  return s;
}

function decodeName(bytes: Uint8Array): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw new TarError(`file name "${latin1(bytes)}" is not valid UTF-8`);
  }
}
