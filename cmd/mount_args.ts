/**
 * Docker's mount flags read into requests (volumes/mounts.ts): `-v/--volume`, `--mount`,
 * `--tmpfs`, `--volumes-from`. Every problem is one UserError (125) naming the flag's value.
 */
import { UserError } from "../base/errors.ts";
import type { MountPoint } from "../base/spec.ts";
import { absolutePath } from "../base/paths.ts";
import type { MountRequest } from "../volumes/mounts.ts";

const PROPAGATIONS = ["private", "rprivate", "shared", "rshared", "slave", "rslave"];
/** The option words of `-v` (Docker's). */
const OPTION_WORDS = ["ro", "rw", "z", "Z", "nocopy", ...PROPAGATIONS];

/**
 * `shared`/`rshared` would have the container's mounts reach the host; the bind is cloned inside
 * the container's mount namespace, a slave of the host's, so they never would: refused rather
 * than accepted and not done (`rslave` does show the host's later mounts in the container).
 */
function refuseShared(propagation: string, given: string, flag: string): void {
  if (propagation !== "shared" && propagation !== "rshared") return;
  throw new UserError(
    `Invalid ${flag} ${
      JSON.stringify(given)
    }: "${propagation}" propagation is not supported (mounts made in the container would not reach the host): use rslave or rprivate`,
  );
}

/** A container path: absolute, cleaned; "/" cannot be a mount point. */
function containerPath(path: string, given: string, flag: string): string {
  if (!path.startsWith("/")) {
    throw new UserError(
      `Invalid ${flag} ${JSON.stringify(given)}: the container path "${path}" must be absolute`,
    );
  }
  const clean = absolutePath(path);
  if (clean === "/") {
    throw new UserError(`Invalid ${flag} ${JSON.stringify(given)}: "/" cannot be a mount point`);
  }
  return clean;
}

/**
 * Whether SELinux is enforced on this host: without it, Docker's `z`/`Z` (relabel the content
 * for the container) have nothing to do, as with Docker on such a host.
 */
function selinuxEnabled(): boolean {
  try {
    Deno.statSync("/sys/fs/selinux/enforce");
    return true;
  } catch {
    return false;
  }
}

/**
 * `-v [SOURCE:]TARGET[:OPTIONS]`: SOURCE an absolute host path (or ./relative) is a bind, a
 * name a named volume, none an anonymous volume. OPTIONS: ro, rw, z, Z, nocopy, and for binds
 * a propagation (rprivate, rslave, ...; not shared: see refuseShared).
 */
export function parseVolumeFlag(value: string): MountRequest {
  const flag = "--volume";
  const parts = value.split(":");
  if (parts.length > 3 || parts.some((p) => p === "")) {
    throw new UserError(
      `Invalid ${flag} ${
        JSON.stringify(value)
      }: expected [HOST_PATH|NAME:]CONTAINER_PATH[:OPTIONS], e.g. /srv/data:/data:ro or data:/data`,
    );
  }
  let source = "";
  let target: string;
  let options = "";
  if (parts.length === 1) {
    target = parts[0]!;
  } else if (parts.length === 2 && parts[1]!.split(",").every((w) => OPTION_WORDS.includes(w))) {
    // "/data:ro": an anonymous volume with options.
    [target, options] = parts as [string, string];
  } else {
    [source, target, options = ""] = parts as [string, string, string?];
  }
  const words = options === "" ? [] : options.split(",");
  let readonly = false;
  let nocopy = false;
  let propagation: string | undefined;
  for (const w of words) {
    if (w === "ro" || w === "rw") readonly = w === "ro";
    else if (w === "nocopy") nocopy = true;
    else if (PROPAGATIONS.includes(w)) {
      refuseShared(w, value, flag);
      propagation = w;
    } else if (w === "z" || w === "Z") {
      if (selinuxEnabled()) {
        throw new UserError(
          `Invalid ${flag} ${
            JSON.stringify(value)
          }: SELinux relabelling ("${w}") is not supported: relabel the directory yourself`,
        );
      }
    } else {
      throw new UserError(
        `Invalid ${flag} ${
          JSON.stringify(value)
        }: unknown option "${w}" (known: ro, rw, z, Z, nocopy, private, rprivate, shared, rshared, slave, rslave)`,
      );
    }
  }
  const path = containerPath(target, value, flag);
  const bind = source.startsWith("/") || source.startsWith(".");
  if (!bind && propagation !== undefined) {
    throw new UserError(
      `Invalid ${flag} ${JSON.stringify(value)}: "${propagation}" applies to bind mounts only`,
    );
  }
  if (bind && nocopy) {
    throw new UserError(
      `Invalid ${flag} ${JSON.stringify(value)}: "nocopy" applies to volumes only`,
    );
  }
  if (bind) {
    return {
      type: "bind",
      source: absolutePath(source),
      target: path,
      readonly,
      mode: options,
      propagation: propagation ?? "rprivate",
      createSource: true,
      given: value,
    };
  }
  if (source !== "" && !/^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/.test(source)) {
    throw new UserError(
      `Invalid ${flag} ${
        JSON.stringify(value)
      }: "${source}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed; a host directory must be an absolute path`,
    );
  }
  return { type: "volume", source, target: path, readonly, mode: options, nocopy, given: value };
}

/** A boolean of `--mount` ("readonly", "readonly=true", "ro=0"). */
function boolValue(key: string, value: string | undefined, given: string): boolean {
  if (value === undefined || value === "true" || value === "1") return true;
  if (value === "false" || value === "0") return false;
  throw new UserError(
    `Invalid --mount ${JSON.stringify(given)}: ${key}=${value}: expected true or false`,
  );
}

const MOUNT_KEYS = [
  "type",
  "source",
  "src",
  "target",
  "destination",
  "dst",
  "readonly",
  "ro",
  "bind-propagation",
  "volume-nocopy",
  "tmpfs-size",
  "tmpfs-mode",
];

/**
 * The fields of a `--mount` value as Docker reads them (a CSV record, Go's encoding/csv): a
 * field that starts with `"` is quoted and may hold commas, `""` in it is one quote; a quote
 * anywhere else is refused.
 */
function csvFields(value: string, fail: (why: string) => never): string[] {
  const fields: string[] = [];
  let i = 0;
  while (i <= value.length) {
    if (value[i] !== '"') {
      const end = value.indexOf(",", i);
      const field = value.slice(i, end < 0 ? value.length : end);
      if (field.includes('"')) {
        fail(`a quote in ${JSON.stringify(field)}: quote a whole field, e.g. "src=/a,b"`);
      }
      fields.push(field);
      if (end < 0) break;
      i = end + 1;
      continue;
    }
    let field = "";
    let j = i + 1;
    for (;;) {
      const q = value.indexOf('"', j);
      if (q < 0) fail("a quoted field is not closed");
      field += value.slice(j, q);
      if (value[q + 1] === '"') {
        field += '"';
        j = q + 2;
        continue;
      }
      j = q + 1;
      break;
    }
    if (j < value.length && value[j] !== ",") {
      fail(`text after the closing quote of ${JSON.stringify(field)}`);
    }
    fields.push(field);
    if (j >= value.length) break;
    i = j + 1;
  }
  return fields;
}

/**
 * `--mount type=bind|volume|tmpfs,source=...,target=...[,readonly][,bind-propagation=...]
 * [,volume-nocopy][,tmpfs-size=...][,tmpfs-mode=...]` (Docker's keys and aliases).
 */
export function parseMountFlag(value: string): MountRequest {
  const fail = (why: string): never => {
    throw new UserError(`Invalid --mount ${JSON.stringify(value)}: ${why}`);
  };
  const fields = new Map<string, string | undefined>();
  for (const field of csvFields(value, fail)) {
    if (field === "") continue;
    const eq = field.indexOf("=");
    const key = (eq < 0 ? field : field.slice(0, eq)).toLowerCase();
    if (!MOUNT_KEYS.includes(key)) {
      fail(`unknown key "${key}" (known: ${MOUNT_KEYS.join(", ")})`);
    }
    const canonical = key === "src"
      ? "source"
      : key === "destination" || key === "dst"
      ? "target"
      : key === "ro"
      ? "readonly"
      : key;
    if (fields.has(canonical)) fail(`"${key}" is given twice`);
    fields.set(canonical, eq < 0 ? undefined : field.slice(eq + 1));
  }
  const type = fields.get("type") ?? "volume";
  if (type !== "bind" && type !== "volume" && type !== "tmpfs") {
    fail(`type "${type}" is not supported (bind, volume or tmpfs)`);
  }
  const target = fields.get("target");
  if (target === undefined || target === "") fail("target is required, e.g. target=/data");
  const path = containerPath(target!, value, "--mount");
  const readonly = fields.has("readonly") && boolValue("readonly", fields.get("readonly"), value);
  const only = (key: string, types: string) => {
    if (fields.has(key)) fail(`"${key}" applies to ${types} mounts only`);
  };
  if (type !== "bind") only("bind-propagation", "bind");
  if (type !== "volume") only("volume-nocopy", "volume");
  if (type !== "tmpfs") {
    only("tmpfs-size", "tmpfs");
    only("tmpfs-mode", "tmpfs");
  }
  const source = fields.get("source") ?? "";
  const mode = readonly ? "ro" : "";
  if (type === "tmpfs") {
    if (source !== "") fail("a tmpfs has no source");
    const options: string[] = [];
    const size = fields.get("tmpfs-size");
    if (size !== undefined) {
      if (!/^\d+[kmg]?$/i.test(size)) fail(`tmpfs-size=${size}: expected bytes, e.g. 64m`);
      options.push(`size=${size.toLowerCase()}`);
    }
    const m = fields.get("tmpfs-mode");
    if (m !== undefined) {
      if (!/^[0-7]{1,4}$/.test(m)) fail(`tmpfs-mode=${m}: expected an octal mode, e.g. 1777`);
      options.push(`mode=${m}`);
    }
    return {
      type,
      source: "",
      target: path,
      readonly,
      mode,
      tmpfsOptions: options,
      given: value,
    };
  }
  if (type === "bind") {
    if (source === "") fail("a bind mount needs source=HOST_PATH");
    if (!source.startsWith("/")) fail(`the bind source "${source}" must be an absolute path`);
    const propagation = fields.get("bind-propagation") ?? "rprivate";
    refuseShared(propagation, value, "--mount");
    if (!PROPAGATIONS.includes(propagation)) {
      fail(`bind-propagation=${propagation}: expected one of ${PROPAGATIONS.join(", ")}`);
    }
    return {
      type,
      source: absolutePath(source),
      target: path,
      readonly,
      mode,
      propagation,
      given: value,
    };
  }
  if (source !== "" && !/^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/.test(source)) {
    fail(`"${source}" is not a valid volume name (only [a-zA-Z0-9][a-zA-Z0-9_.-])`);
  }
  const nocopy = fields.has("volume-nocopy") &&
    boolValue("volume-nocopy", fields.get("volume-nocopy"), value);
  return { type: "volume", source, target: path, readonly, mode, nocopy, given: value };
}

const TMPFS_WORDS = [
  "exec",
  "noexec",
  "suid",
  "nosuid",
  "dev",
  "nodev",
  "ro",
  "rw",
  "noatime",
  "atime",
  "strictatime",
];

/** `--tmpfs PATH[:OPTIONS]`: size=, mode=, uid=, gid=, nr_inodes=, and mount(8) flags. */
export function parseTmpfsFlag(value: string): MountRequest {
  const colon = value.indexOf(":");
  const target = colon < 0 ? value : value.slice(0, colon);
  const options = colon < 0 ? [] : value.slice(colon + 1).split(",").filter((o) => o !== "");
  const path = containerPath(target, value, "--tmpfs");
  let readonly = false;
  const words: string[] = [];
  for (const o of options) {
    const [key, v] = o.split("=", 2) as [string, string?];
    if (v === undefined && TMPFS_WORDS.includes(key)) {
      if (key === "ro" || key === "rw") readonly = key === "ro";
      else words.push(key);
      continue;
    }
    const ok = (key === "size" && /^\d+[kmg%]?$/i.test(v ?? "")) ||
      (key === "mode" && /^[0-7]{1,4}$/.test(v ?? "")) ||
      ((key === "uid" || key === "gid" || key === "nr_inodes") && /^\d+$/.test(v ?? ""));
    if (!ok) {
      throw new UserError(
        `Invalid --tmpfs ${
          JSON.stringify(value)
        }: unknown or malformed option "${o}" (size=64m, mode=1777, uid=, gid=, nr_inodes=, exec, noexec, suid, nosuid, dev, nodev, ro, rw, noatime)`,
      );
    }
    words.push(o);
  }
  return {
    type: "tmpfs",
    source: "",
    target: path,
    readonly,
    mode: options.join(","),
    tmpfsOptions: words,
    given: value,
  };
}

/**
 * `--volumes-from CONTAINER[:ro|:rw]`: the other container's binds and volumes, at the same
 * places (read-only with `:ro`; as they were without a suffix).
 */
export function volumesFromRequests(
  value: string,
  mountPoints: readonly MountPoint[],
): MountRequest[] {
  const mode = value.endsWith(":ro") ? "ro" : value.endsWith(":rw") ? "rw" : undefined;
  return mountPoints.filter((m) => m.Type !== "tmpfs").map((m): MountRequest => {
    const readonly = mode === undefined ? !m.RW : mode === "ro";
    const given = `--volumes-from ${value}`;
    if (m.Type === "bind") {
      return {
        type: "bind",
        source: m.Source,
        target: m.Destination,
        readonly,
        mode: mode ?? m.Mode,
        propagation: m.Propagation || "rprivate",
        given,
      };
    }
    return {
      type: "volume",
      source: m.Name!,
      target: m.Destination,
      readonly,
      mode: mode ?? m.Mode,
      nocopy: true,
      given,
    };
  });
}

/** The container named by a `--volumes-from` value (without its :ro or :rw). */
export function volumesFromContainer(value: string): string {
  return value.replace(/:(ro|rw)$/, "");
}
