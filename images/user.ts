/**
 * `-u/--user` and the image's `User` resolved against the image's /etc/passwd and /etc/group,
 * read from the unpacked layers (top-most first, whiteouts and opaque directories honoured), the
 * way runc does it: `name`, `uid`, `name:group`, `uid:gid`; supplementary groups are those that
 * list the user, and only when no group was given.
 */

import { UserError } from "../base/errors.ts";
import { lgetxattr } from "../base/libc.ts";
import { OPAQUE_XATTR } from "./whiteout.ts";

/** Who the container's process runs as. */
export interface ExecUser {
  uid: number;
  gid: number;
  additionalGids: number[];
}

const MAX_ID = 2 ** 31 - 1;

/** Resolves a user spec against the image whose layer dirs are given top-most first. */
export function lookupUser(layers: string[], user: string): ExecUser {
  const colon = user.indexOf(":");
  const userArg = colon < 0 ? user : user.slice(0, colon);
  const groupArg = colon < 0 ? "" : user.slice(colon + 1);
  const numericUser = parseId(userArg);

  let uid = 0;
  let gid = 0;
  let name: string | undefined;
  const passwd = parseColonFile(readFromLayers(layers, "etc/passwd"));
  const entry = passwd.find((f) =>
    f[0] === (userArg === "" ? "root" : userArg) ||
    (numericUser !== null && Number(f[2]) === numericUser)
  );
  if (entry !== undefined && parseId(entry[2] ?? "") !== null) {
    name = entry[0];
    uid = Number(entry[2]);
    gid = parseId(entry[3] ?? "") ?? 0;
  } else if (userArg !== "" && numericUser === null) {
    throw new UserError(`Cannot find user "${userArg}": no matching entries in passwd file`);
  } else {
    uid = numericUser ?? 0;
  }

  const groups = parseColonFile(readFromLayers(layers, "etc/group"));
  const additionalGids: number[] = [];
  if (groupArg !== "") {
    const numericGroup = parseId(groupArg);
    const group = groups.find((f) =>
      f[0] === groupArg || (numericGroup !== null && Number(f[2]) === numericGroup)
    );
    if (group !== undefined && parseId(group[2] ?? "") !== null) gid = Number(group[2]);
    else if (numericGroup !== null) gid = numericGroup;
    else throw new UserError(`Cannot find group "${groupArg}": no matching entries in group file`);
  } else if (name !== undefined) {
    for (const g of groups) {
      const members = (g[3] ?? "").split(",").map((m) => m.trim());
      const id = parseId(g[2] ?? "");
      if (id !== null && members.includes(name) && !additionalGids.includes(id)) {
        additionalGids.push(id);
      }
    }
  }
  return { uid, gid, additionalGids };
}

function parseId(text: string): number | null {
  if (!/^\d+$/.test(text)) return null;
  const n = Number(text);
  return n <= MAX_ID ? n : null;
}

function parseColonFile(text: string | null): string[][] {
  if (text === null) return [];
  return text.split("\n")
    .filter((line) => line.trim() !== "" && !line.startsWith("#"))
    .map((line) => line.split(":"));
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
