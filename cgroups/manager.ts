/**
 * The one entry point of the cgroup floor: `detectLayout` reads the host's layout, and
 * `cgroupDriver()` picks the driver for it, v2 (`v2.ts`) on a pure cgroup v2 host and v1
 * (`v1.ts`) on v1 and hybrid hosts. The types they share live in `cgroup.ts` and are
 * re-exported here, so callers import everything from this file.
 *
 * What a caller gets: `create` makes the container's cgroup with its limits and device rules
 * before any process of the container exists; `procsFiles` (v2) are where the engine moves the
 * container's first process in, and on v1 the container's thread joins by `threadFiles`; `pids`, `stats` and `oomKills` read it while it runs;
 * `updatePids` lowers the pids limit once the container's first process exists; `destroy`
 * kills what is left and removes the directories. `open` and `list` find existing cgroups.
 */
import { cgroupParent } from "../base/paths.ts";
import { CGROUP_ROOT, type CgroupDriver, type CgroupLayout } from "./cgroup.ts";
import { exists, readText } from "./fs.ts";
import { CgroupV1Driver, findControllerMounts } from "./v1.ts";
import { CgroupV2Driver } from "./v2.ts";

export type { Cgroup, CgroupDriver, CgroupLayout, CgroupStats, CreateOptions } from "./cgroup.ts";
export { CGROUP_ROOT } from "./cgroup.ts";

/**
 * The host's layout, from one or two stats: `cgroup.controllers` at the root only exists on a
 * pure v2 host; on a hybrid host it is in the cgroup2 mount at `<root>/unified`.
 */
export function detectLayout(root: string = CGROUP_ROOT): CgroupLayout {
  if (exists(`${root}/cgroup.controllers`)) return "v2";
  if (exists(`${root}/unified/cgroup.controllers`)) return "hybrid";
  return "v1";
}

/** Where a driver works: the cgroupfs root and the parent of the containers' cgroups. */
export interface CgroupDriverOptions {
  /** Default `/sys/fs/cgroup`. */
  root?: string;
  /** Default `cgroupParent()` ("mini-docker", or MINI_DOCKER_CGROUP_PARENT). */
  parent?: string;
}

/** The driver for this host, chosen by `detectLayout`: v2, or v1 on v1 and hybrid hosts. */
export function cgroupDriver(opts: CgroupDriverOptions = {}): CgroupDriver {
  const root = opts.root ?? CGROUP_ROOT;
  const parent = opts.parent ?? cgroupParent();
  return detectLayout(root) === "v2"
    ? new CgroupV2Driver({ root, parent })
    : new CgroupV1Driver({ root, parent });
}

/**
 * The driver and the name of the cgroup at `cgroupsPath` ("parent/name", below the cgroupfs root;
 * a leading "/" is the same), as the spec's `linux.cgroupsPath` gives it.
 */
export function cgroupAt(
  cgroupsPath: string,
  opts: { root?: string } = {},
): { driver: CgroupDriver; name: string } {
  const path = cgroupsPath.replace(/^\/+/, "");
  const slash = path.lastIndexOf("/");
  return {
    driver: cgroupDriver({ root: opts.root, parent: path.slice(0, Math.max(slash, 0)) }),
    name: path.slice(slash + 1),
  };
}

/**
 * The controllers a container can get on this host: on v1 those mounted that the driver uses,
 * on v2 those of the root's `cgroup.controllers`.
 */
export function availableControllers(root: string = CGROUP_ROOT): string[] {
  if (detectLayout(root) === "v2") {
    return (readText(`${root}/cgroup.controllers`) ?? "").split(/\s+/).filter((c) => c !== "");
  }
  return [...findControllerMounts(root).keys()].sort();
}
