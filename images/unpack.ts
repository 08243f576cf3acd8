/**
 * Unpacks one layer tar into an empty directory, in the form overlayfs reads as a lower layer:
 * `.wh.<name>` becomes a 0:0 character device `<name>`, `.wh..wh..opq` marks its directory with
 * the `trusted.overlay.opaque` xattr. Ownership, modes (setuid, sticky), mtimes, xattrs, links
 * and device nodes are kept.
 *
 * Nothing may land outside the root: paths with `..` are refused, absolute paths are taken
 * relative to the root, hard link targets must be inside the layer, and no entry is ever written
 * through a symlink (each parent is checked with lstat to be a real directory). The root should
 * be a fresh temporary directory that only this unpacker writes to.
 */

import { lchownSync, lutimesSync } from "node:fs";
import { type TarEntry, TarReader } from "./tar.ts";
import { EOPNOTSUPP, lsetxattr, makedev, mknod, SyscallError } from "../base/libc.ts";
import { OPAQUE_MARKER, OPAQUE_XATTR, WHITEOUT_PREFIX } from "./whiteout.ts";

const S_IFIFO = 0o010000;
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;

/** A layer entry that cannot be unpacked safely or at all. */
export class UnpackError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UnpackError";
  }
}

/** What an unpack produced. */
export interface UnpackStats {
  /** Sum of the regular files' sizes: the layer's size as `images` shows it. */
  size: number;
  entries: number;
}

/** Reads a (decompressed) tar stream to its end and writes its entries under `root`. */
export async function unpackLayer(
  stream: ReadableStream<Uint8Array>,
  root: string,
): Promise<UnpackStats> {
  const tar = new TarReader(stream);
  const unpacker = new Unpacker(root);
  try {
    for await (const entry of tar) await unpacker.apply(entry, tar);
    unpacker.finish();
  } catch (err) {
    await tar.cancel(err);
    throw err;
  }
  return unpacker.stats;
}

/**
 * Splits an entry path into clean components: leading `/` and `.` components dropped, `..`
 * refused. `[]` is the root itself.
 */
export function cleanPath(path: string): string[] {
  const parts = path.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.includes("..")) throw new UnpackError(`entry "${path}" escapes the layer root`);
  return parts;
}

class Unpacker {
  readonly stats: UnpackStats = { size: 0, entries: 0 };
  #root: string;
  /** Relative paths known to be real directories (not symlinks) that this unpacker made or saw. */
  #dirs = new Set<string>([""]);
  /** Directory mtimes, applied at the end: creating children would change them. */
  #dirTimes: Array<[string, number]> = [];

  constructor(root: string) {
    this.#root = root;
  }

  async apply(entry: TarEntry, tar: TarReader): Promise<void> {
    this.stats.entries++;
    const parts = cleanPath(entry.path);
    if (parts.length === 0) {
      if (entry.type !== "dir") throw new UnpackError(`entry "${entry.path}" replaces the root`);
      this.#meta(this.#root, entry);
      return;
    }
    const name = parts[parts.length - 1]!;
    const parentRel = parts.slice(0, -1).join("/");
    const parentAbs = this.#parent(parts, entry.path, true);

    if (name.startsWith(WHITEOUT_PREFIX)) {
      if (name === OPAQUE_MARKER) {
        lsetxattr(parentAbs, OPAQUE_XATTR, new TextEncoder().encode("y"));
      } else if (!name.startsWith(`${WHITEOUT_PREFIX}${WHITEOUT_PREFIX}`)) {
        const hidden = name.slice(WHITEOUT_PREFIX.length);
        if (hidden === "" || hidden === "." || hidden === "..") {
          throw new UnpackError(`whiteout "${entry.path}" names no file`);
        }
        const rel = parentRel === "" ? hidden : `${parentRel}/${hidden}`;
        const abs = `${parentAbs}/${hidden}`;
        this.#clear(rel, abs, false);
        mknod(abs, S_IFCHR | 0o000, 0);
      }
      // Other `.wh..wh.` names are AUFS bookkeeping (hard link dirs); overlayfs has no use for them.
      return;
    }

    const rel = parts.join("/");
    const abs = `${parentAbs}/${name}`;
    if (this.#clear(rel, abs, entry.type === "dir")) {
      this.#meta(abs, entry); // an existing directory stays; its metadata is updated
      return;
    }
    try {
      await this.#create(entry, rel, abs, tar);
    } catch (err) {
      if (err instanceof UnpackError) throw err;
      throw new UnpackError(`cannot create "${entry.path}": ${describe(err)}`);
    }
  }

  async #create(entry: TarEntry, rel: string, abs: string, tar: TarReader): Promise<void> {
    switch (entry.type) {
      case "dir":
        Deno.mkdirSync(abs);
        this.#dirs.add(rel);
        break;
      case "file": {
        const file = Deno.openSync(abs, { write: true, createNew: true, mode: 0o600 });
        try {
          for await (const chunk of tar.body()) {
            for (let off = 0; off < chunk.byteLength;) {
              off += file.writeSync(chunk.subarray(off));
            }
          }
        } finally {
          file.close();
        }
        this.stats.size += entry.size;
        break;
      }
      case "symlink":
        Deno.symlinkSync(entry.linkpath, abs);
        break;
      case "hardlink": {
        const target = cleanPath(entry.linkpath);
        if (target.length === 0) {
          throw new UnpackError(`hard link "${entry.path}" points to the root`);
        }
        const targetAbs = `${this.#parent(target, entry.linkpath, false)}/${target.at(-1)}`;
        let st: Deno.FileInfo;
        try {
          st = Deno.lstatSync(targetAbs);
        } catch {
          throw new UnpackError(
            `hard link "${entry.path}" points to "${entry.linkpath}", which is not in the layer`,
          );
        }
        if (st.isDirectory) {
          throw new UnpackError(`hard link "${entry.path}" points to a directory`);
        }
        Deno.linkSync(targetAbs, abs);
        return; // a hard link shares its target's inode, metadata included
      }
      case "chardev":
        mknod(abs, S_IFCHR | entry.mode, makedev(entry.devmajor, entry.devminor));
        break;
      case "blockdev":
        mknod(abs, S_IFBLK | entry.mode, makedev(entry.devmajor, entry.devminor));
        break;
      case "fifo":
        mknod(abs, S_IFIFO | entry.mode, 0);
        break;
    }
    this.#meta(abs, entry);
  }

  /**
   * Absolute path of the entry's parent directory. Each component must be a real directory:
   * missing ones are created (when `create`), a symlink or a file is refused. Checking with
   * lstat is what keeps a symlink made by an earlier entry from redirecting a later write.
   */
  #parent(parts: string[], original: string, create: boolean): string {
    let rel = "";
    for (let i = 0; i < parts.length - 1; i++) {
      rel = rel === "" ? parts[i]! : `${rel}/${parts[i]}`;
      if (this.#dirs.has(rel)) continue;
      const abs = `${this.#root}/${rel}`;
      let st: Deno.FileInfo | undefined;
      try {
        st = Deno.lstatSync(abs);
      } catch (err) {
        if (!(err instanceof Deno.errors.NotFound)) throw err;
      }
      if (st === undefined) {
        if (!create) throw new UnpackError(`"${original}" is not in the layer`);
        Deno.mkdirSync(abs);
        Deno.chmodSync(abs, 0o755);
      } else if (st.isSymlink) {
        throw new UnpackError(`entry "${original}" goes through the symbolic link "${rel}"`);
      } else if (!st.isDirectory) {
        throw new UnpackError(
          `entry "${original}" goes through "${rel}", which is not a directory`,
        );
      }
      this.#dirs.add(rel);
    }
    return rel === "" ? this.#root : `${this.#root}/${rel}`;
  }

  /**
   * Makes room for a new entry at `abs`. Returns true when an existing directory is kept (a
   * directory entry over a directory merges, as in Docker); anything else there is removed,
   * without following symlinks.
   */
  #clear(rel: string, abs: string, isDir: boolean): boolean {
    let st: Deno.FileInfo;
    try {
      st = Deno.lstatSync(abs);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return false;
      throw err;
    }
    if (st.isDirectory) {
      if (isDir) return true;
      Deno.removeSync(abs, { recursive: true });
      for (const dir of this.#dirs) {
        if (dir === rel || dir.startsWith(`${rel}/`)) this.#dirs.delete(dir);
      }
      this.#dirTimes = this.#dirTimes.filter(([p]) => p !== abs && !p.startsWith(`${abs}/`));
    } else {
      Deno.removeSync(abs);
    }
    return false;
  }

  #meta(abs: string, entry: TarEntry): void {
    // chown before chmod: chown clears setuid and setgid bits.
    lchownSync(abs, entry.uid, entry.gid);
    if (entry.type !== "symlink") Deno.chmodSync(abs, entry.mode);
    for (const [name, value] of entry.xattrs) {
      // An image must not steer overlayfs itself (redirects, metacopy, opaque by another name).
      if (name.startsWith("trusted.overlay.")) continue;
      try {
        lsetxattr(abs, name, value);
      } catch (err) {
        if (!(err instanceof SyscallError && err.errno === EOPNOTSUPP)) throw err;
      }
    }
    if (entry.type === "dir") this.#dirTimes.push([abs, entry.mtime]);
    else if (entry.type === "symlink") lutimesSync(abs, entry.mtime, entry.mtime);
    else Deno.utimeSync(abs, entry.mtime, entry.mtime);
  }

  finish(): void {
    for (const [abs, mtime] of this.#dirTimes) {
      // A later entry may have replaced the directory, even with a symlink: never follow it.
      try {
        lutimesSync(abs, mtime, mtime);
      } catch (err) {
        if (!(err instanceof Deno.errors.NotFound)) throw err;
      }
    }
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
