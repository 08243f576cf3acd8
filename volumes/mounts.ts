/**
 * The user's mounts (`-v`, `--mount`, `--tmpfs`, `--volumes-from`, the image's Volumes) as the
 * spec's mounts: bind sources resolved once to a canonical host path (the container's thread
 * opens exactly that path, refusing any symlink met on it later), volumes created on first use
 * and taken for the container, tmpfs with Docker's defaults. Parsing Docker's syntax is the
 * command line's business (cmd/mount_args.ts); this file turns requests into mounts.
 */
import type { Mount, MountPoint } from "../base/spec.ts";
import { UserError } from "../base/errors.ts";
import { takeVolume } from "./store.ts";
import { exists } from "../base/paths.ts";

/** One mount the user asked for, in neutral terms. */
export interface MountRequest {
  type: "bind" | "volume" | "tmpfs";
  /** bind: an absolute host path; volume: a name, or "" for an anonymous volume; tmpfs: "". */
  source: string;
  /** An absolute container path, cleaned. */
  target: string;
  readonly: boolean;
  /** Docker's Mode: the option words as given ("ro", "z", ...). */
  mode: string;
  /** bind: rprivate, rshared, ... (default rprivate). */
  propagation?: string;
  /** volume: not filled from the image (`volume-nocopy`, `:nocopy`). */
  nocopy?: boolean;
  /** tmpfs: mount(8) words (size=, mode=, exec, ...), after Docker's nosuid,nodev,noexec. */
  tmpfsOptions?: string[];
  /** bind: a missing source directory is created (`-v`, Docker's); else it is an error. */
  createSource?: boolean;
  /** What the user wrote, for messages. */
  given: string;
}

/** Docker's orders: parents before what is mounted inside them. */
function depth(path: string): number {
  return path.split("/").filter((p) => p !== "").length;
}

/**
 * Checks every request (sources exist, or may be created), so that bad input fails before
 * anything is made; the first problem is a UserError naming the mount.
 */
export function checkMounts(requests: readonly MountRequest[]): void {
  const seen = new Set<string>();
  for (const r of requests) {
    if (seen.has(r.target)) {
      throw new UserError(`Duplicate mount point: ${r.target} (${r.given}): mount it once`);
    }
    seen.add(r.target);
    // The container's /proc is the parent's to mount and mask (runc refuses the same).
    if (r.target === "/proc" || r.target.startsWith("/proc/")) {
      throw new UserError(
        `Invalid mount ${
          JSON.stringify(r.given)
        }: nothing can be mounted on "${r.target}": /proc is the container's procfs`,
      );
    }
    if (r.type !== "bind") continue;
    try {
      Deno.statSync(r.source);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound) || !r.createSource) {
        throw new UserError(
          `Invalid mount ${JSON.stringify(r.given)}: bind source path does not exist: ${r.source}`,
        );
      }
    }
  }
}

/**
 * The spec's mounts for `requests`, made for container `id`: missing `-v` host directories are
 * created, volumes created and taken (referenced by `tag`, the process that makes the
 * container). Call `checkMounts` first.
 */
export function resolveMounts(
  requests: readonly MountRequest[],
  id: string,
  tag: string,
): { mounts: Mount[]; mountPoints: MountPoint[] } {
  const sorted = [...requests].sort((a, b) => depth(a.target) - depth(b.target));
  const mounts: Mount[] = [];
  const mountPoints: MountPoint[] = [];
  for (const r of sorted) {
    const ro = r.readonly ? ["ro"] : [];
    if (r.type === "tmpfs") {
      mounts.push({
        destination: r.target,
        type: "tmpfs",
        source: "tmpfs",
        options: ["nosuid", "nodev", "noexec", ...ro, ...(r.tmpfsOptions ?? [])],
      });
      mountPoints.push({
        Type: "tmpfs",
        Source: "",
        Destination: r.target,
        Mode: r.mode,
        RW: !r.readonly,
        Propagation: "",
      });
      continue;
    }
    if (r.type === "bind") {
      if (r.createSource && !exists(r.source)) {
        try {
          Deno.mkdirSync(r.source, { recursive: true, mode: 0o755 });
        } catch (err) {
          // A dangling symlink on the way (never created through), a file, no permission.
          throw new UserError(
            `Invalid mount ${JSON.stringify(r.given)}: cannot create the bind source ${r.source}: ${
              err instanceof Error ? err.message.replace(/ \(os error \d+\).*$/, "") : err
            }`,
          );
        }
      }
      const propagation = r.propagation ?? "rprivate";
      mounts.push({
        destination: r.target,
        type: "bind",
        source: Deno.realPathSync(r.source),
        options: ["rbind", ...ro, propagation],
      });
      mountPoints.push({
        Type: "bind",
        Source: r.source,
        Destination: r.target,
        Mode: r.mode,
        RW: !r.readonly,
        Propagation: propagation,
      });
      continue;
    }
    const volume = takeVolume(r.source === "" ? undefined : r.source, id, tag);
    mounts.push({
      destination: r.target,
      type: "bind",
      source: Deno.realPathSync(volume.Mountpoint),
      options: ["rbind", ...ro, "rprivate"],
      ...(!r.nocopy && { copyUp: true }),
    });
    mountPoints.push({
      Type: "volume",
      Name: volume.Name,
      Source: volume.Mountpoint,
      Destination: r.target,
      Driver: "local",
      Mode: r.mode,
      RW: !r.readonly,
      Propagation: "",
      ...(r.source === "" && { Anonymous: true }),
    });
  }
  return { mounts, mountPoints };
}
