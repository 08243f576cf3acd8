/**
 * A user spec (`name`, `uid`, `name:group`, `uid:gid`) resolved against /etc/passwd and
 * /etc/group the way runc does it: supplementary groups are those that list the user, and only
 * when no group was given. The files are read through a function, so that callers choose where
 * from: an image's layers (images/user.ts), or the container's own root from a thread inside it.
 */
import { UserError } from "../base/errors.ts";

/** Who the container's process runs as. */
export interface ExecUser {
  uid: number;
  gid: number;
  additionalGids: number[];
  /** The home directory of its passwd entry; absent without one (Docker then uses "/"). */
  home?: string;
}

const MAX_ID = 2 ** 31 - 1;

/**
 * Resolves a user spec with `read` giving the text of "etc/passwd" and "etc/group" (null when
 * absent). `exec` passes a reader of the container's own root, from a thread inside it, so
 * that no path of the container is ever followed from the host.
 */
export function resolveUser(user: string, read: (path: string) => string | null): ExecUser {
  const colon = user.indexOf(":");
  const userArg = colon < 0 ? user : user.slice(0, colon);
  const groupArg = colon < 0 ? "" : user.slice(colon + 1);
  const numericUser = parseId(userArg);

  let uid = 0;
  let gid = 0;
  let name: string | undefined;
  let home: string | undefined;
  const passwd = parseColonFile(read("etc/passwd"));
  const entry = passwd.find((f) =>
    f[0] === (userArg === "" ? "root" : userArg) ||
    (numericUser !== null && Number(f[2]) === numericUser)
  );
  if (entry !== undefined && parseId(entry[2] ?? "") !== null) {
    name = entry[0];
    uid = Number(entry[2]);
    gid = parseId(entry[3] ?? "") ?? 0;
    if (entry[5] !== undefined && entry[5] !== "") home = entry[5];
  } else if (userArg !== "" && numericUser === null) {
    throw new UserError(`Cannot find user "${userArg}": no matching entries in passwd file`);
  } else {
    uid = numericUser ?? 0;
  }

  const groups = parseColonFile(read("etc/group"));
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
  return { uid, gid, additionalGids, ...(home !== undefined && { home }) };
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
