/**
 * Whether a directory holds a usable root filesystem: what `run` checks before any work. Kept
 * apart from prepare.ts (downloads, tarballs, node:path) so that `run` loads only this.
 */
import { UserError } from "../base/errors.ts";

/** Default rootfs, relative to the working directory, as in the original project. */
export const DEFAULT_ROOTFS = "rootfs/alpine";

/** The rootfs to use when none is given: `MINI_DOCKER_ROOTFS`, else {@link DEFAULT_ROOTFS}. */
export function defaultRootfs(): string {
  return Deno.env.get("MINI_DOCKER_ROOTFS") || DEFAULT_ROOTFS;
}

/**
 * "missing" when `dir` is absent (or not a directory), "ok" when it has a /bin/sh entry or an
 * executable file at its top, in bin, sbin, usr/bin or usr/sbin, "empty" otherwise.
 */
export function rootfsStatus(dir: string): "missing" | "empty" | "ok" {
  try {
    if (!Deno.statSync(dir).isDirectory) return "missing";
  } catch {
    return "missing";
  }
  try {
    // lstat: Alpine's /bin/sh is an absolute symlink, which from the host points elsewhere.
    Deno.lstatSync(`${dir}/bin/sh`);
    return "ok";
  } catch {
    // look further
  }
  for (const sub of ["", "bin", "sbin", "usr/bin", "usr/sbin"]) {
    try {
      for (const entry of Deno.readDirSync(`${dir}/${sub}`)) {
        if (entry.isDirectory) continue;
        // A link in a bin directory is an applet or a program; at the top it may be "lib".
        if (entry.isSymlink && sub !== "") return "ok";
        if (entry.isSymlink) continue;
        if ((Deno.statSync(`${dir}/${sub}/${entry.name}`).mode ?? 0) & 0o111) return "ok";
      }
    } catch {
      // no such directory
    }
  }
  return "empty";
}

/**
 * Throws the error `run` shows when `dir` holds no usable rootfs: it names the path and the
 * command that prepares it.
 */
export function assertRootfs(dir: string): void {
  const status = rootfsStatus(dir);
  if (status === "ok") return;
  const command = dir === DEFAULT_ROOTFS ? "mini-docker rootfs" : `mini-docker rootfs ${dir}`;
  const what = status === "missing" ? "does not exist" : "has no /bin/sh or other executable";
  throw new UserError(`Rootfs "${dir}" ${what}: prepare it with "${command}"`);
}
