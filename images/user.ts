/**
 * `-u/--user` and the image's `User` resolved against the image's /etc/passwd and /etc/group,
 * read from the unpacked layers (top-most first, whiteouts and opaque directories honoured), the
 * way runc does it: `name`, `uid`, `name:group`, `uid:gid`; supplementary groups are those that
 * list the user, and only when no group was given.
 */

import { lgetxattr } from "../base/libc.ts";
import { OPAQUE_XATTR } from "./whiteout.ts";

import { type ExecUser, resolveUser } from "./passwd.ts";

export type { ExecUser } from "./passwd.ts";

/** Resolves a user spec against the image whose layer dirs are given top-most first. */
export function lookupUser(layers: string[], user: string): ExecUser {
  return resolveUser(user, (path) => readFromLayers(layers, path));
}

/**
 * A file's text as the container would see it in the overlay of `layers` (top-most first); null
 * when absent, whited out, or not a regular file.
 */
export function readFromLayers(layers: string[], path: string): string | null {
  const parts = path.split("/").filter((p) => p !== "");
  for (const layer of layers) {
    let dir = layer;
    let opaque = false;
    for (let i = 0; i < parts.length; i++) {
      const here = `${dir}/${parts[i]}`;
      let st: Deno.FileInfo;
      try {
        st = Deno.lstatSync(here);
      } catch {
        if (opaque) return null; // an opaque directory above hides the lower layers
        break;
      }
      if (i === parts.length - 1) {
        return st.isFile ? Deno.readTextFileSync(here) : null; // whiteout, symlink, dir...
      }
      if (!st.isDirectory) return null; // a whiteout or a file replaces the directory
      if (lgetxattr(here, OPAQUE_XATTR) !== null) opaque = true;
      dir = here;
    }
  }
  return null;
}
