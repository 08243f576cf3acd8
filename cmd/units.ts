/**
 * Docker's units and formats, parsed exactly as Docker parses them: memory sizes
 * ("100M", "1.5g", "512k", "64MiB"), CPU counts ("0.5"), environment entries and env files.
 */
import { UserError } from "../base/errors.ts";

const MEMORY_UNITS: Record<string, number> = {
  "": 1,
  k: 1024,
  m: 1024 ** 2,
  g: 1024 ** 3,
  t: 1024 ** 4,
  p: 1024 ** 5,
};

/**
 * Parses a memory size as Docker's RAMInBytes does: a decimal number, an optional space, an
 * optional unit (k, m, g, t, p; case-insensitive; binary multiples), optional "i" and "b".
 */
export function parseMemory(text: string): number {
  const m = /^(\d+(?:\.\d+)?) ?([kmgtp])?i?b?$/i.exec(text.trim());
  if (m === null) {
    throw new UserError(
      `Cannot parse memory size "${text}": expected a number with an optional b, k, m or g suffix, e.g. 100m`,
    );
  }
  const bytes = Math.floor(Number(m[1]) * MEMORY_UNITS[(m[2] ?? "").toLowerCase()]!);
  if (!Number.isSafeInteger(bytes)) throw new UserError(`Memory size "${text}" is too large`);
  return bytes;
}

/** Formats bytes the way Docker prints limits: "50MiB", "1.5GiB", "512KiB", "100B". */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let i = 0;
  while (value >= 1024 && i < units.length - 1) {
    value /= 1024;
    i++;
  }
  return `${Number(value.toFixed(2))}${units[i]}`;
}

/** The CFS period Docker uses for --cpus, in microseconds. */
export const CPU_PERIOD_US = 100_000;

/**
 * Parses `--cpus`: a positive decimal, at most the number of CPUs on the host (as Docker),
 * and at least 0.01 (the kernel's minimum quota of 1 ms per 100 ms period).
 * Returns the CFS quota for a 100 ms period.
 */
export function parseCpus(text: string, hostCpus: number): { quota: number; period: number } {
  if (!/^(\d+(\.\d*)?|\.\d+)$/.test(text.trim())) {
    throw new UserError(
      `Cannot parse CPU count "${text}": expected a decimal number such as 0.5 or 2`,
    );
  }
  const cpus = Number(text);
  if (cpus <= 0) throw new UserError(`Invalid CPU count "${text}": it must be greater than 0`);
  if (cpus > hostCpus) {
    throw new UserError(
      `Invalid CPU count "${text}": the range of CPUs is from 0.01 to ${hostCpus}.00, as there are only ${hostCpus} CPUs available`,
    );
  }
  const quota = Math.round(cpus * CPU_PERIOD_US);
  if (quota < 1000) {
    throw new UserError(`Invalid CPU count "${text}": the minimum is 0.01 CPU`);
  }
  return { quota, period: CPU_PERIOD_US };
}

const ENV_NAME = /^[^=\s]+$/;

/**
 * One `-e` value as Docker reads it: `KEY=VALUE` as given, or `KEY` alone to copy the variable
 * from mini-docker's own environment (dropped when it is not set there).
 */
export function parseEnvEntry(
  entry: string,
  lookup: (key: string) => string | undefined,
): string | undefined {
  const eq = entry.indexOf("=");
  const key = eq < 0 ? entry : entry.slice(0, eq);
  if (!ENV_NAME.test(key)) {
    throw new UserError(`Invalid environment variable "${entry}": expected KEY=VALUE or KEY`);
  }
  if (eq >= 0) return entry;
  const value = lookup(key);
  return value === undefined ? undefined : `${key}=${value}`;
}

/**
 * An env file as Docker reads it: one `KEY=VALUE` or `KEY` per line; blank lines and lines
 * starting with `#` are skipped; values are taken literally (quotes are kept, as Docker does).
 */
export function parseEnvFile(
  text: string,
  file: string,
  lookup: (key: string) => string | undefined,
): string[] {
  const out: string[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.replace(/^\s+/, "");
    if (line === "" || line.startsWith("#")) return;
    if (line.includes("\0")) {
      throw new UserError(`Invalid env file "${file}" line ${i + 1}: it contains a NUL byte`);
    }
    const eq = line.indexOf("=");
    const key = eq < 0 ? line.trimEnd() : line.slice(0, eq);
    if (!ENV_NAME.test(key)) {
      throw new UserError(
        `Invalid env file "${file}" line ${i + 1}: variable "${key}" has white spaces`,
      );
    }
    const entry = parseEnvEntry(eq < 0 ? key : `${key}${line.slice(eq)}`, lookup);
    if (entry !== undefined) out.push(entry);
  });
  return out;
}

/** Merges environment entries; a later entry with the same key replaces an earlier one. */
export function mergeEnv(...lists: readonly string[][]): string[] {
  const map = new Map<string, string>();
  for (const list of lists) {
    for (const e of list) {
      const eq = e.indexOf("=");
      map.set(eq < 0 ? e : e.slice(0, eq), e);
    }
  }
  return [...map.values()];
}

/** Docker's smallest memory limit and reservation (linuxMinMemory): 6 MiB. */
export const MIN_MEMORY = 6 * 1024 * 1024;

/**
 * Parses `--pids-limit`: an integer; -1 (Docker's "unlimited") and 0 (unlimited too, as the
 * Docker daemon reads it) both return -1, the OCI value for no limit.
 */
export function parsePidsLimit(text: string): number {
  if (!/^-?\d+$/.test(text.trim())) {
    throw new UserError(
      `Cannot parse PIDs limit "${text}": expected a whole number of processes, or -1 for unlimited`,
    );
  }
  const limit = Number(text);
  if (limit < -1) {
    throw new UserError(
      `Invalid PIDs limit "${text}": expected a positive number of processes, or -1 for unlimited`,
    );
  }
  if (!Number.isSafeInteger(limit)) throw new UserError(`PIDs limit "${text}" is too large`);
  return limit <= 0 ? -1 : limit;
}

/** The kernel's range of cgroup v1 `cpu.shares` (and runc's of --cpu-shares). */
export const CPU_SHARES_MIN = 2;
export const CPU_SHARES_MAX = 262144;

/**
 * Parses `--cpu-shares`, a relative CPU weight (1024 is the kernel's default). 0 means "not
 * set", as in Docker. Returns undefined for 0.
 */
export function parseCpuShares(text: string): number | undefined {
  if (!/^\d+$/.test(text.trim())) {
    throw new UserError(
      `Cannot parse CPU shares "${text}": expected a whole number such as 512 (1024 is the default weight)`,
    );
  }
  const shares = Number(text);
  if (shares === 0) return undefined;
  if (shares < CPU_SHARES_MIN || shares > CPU_SHARES_MAX) {
    throw new UserError(
      `Invalid CPU shares "${text}": expected ${CPU_SHARES_MIN} to ${CPU_SHARES_MAX} (1024 is the default weight)`,
    );
  }
  return shares;
}

/**
 * Parses a kernel CPU or memory-node list ("0-3,5", as in cpuset.cpus and
 * /sys/devices/system/cpu/online) into its sorted numbers. `what` names the list in errors.
 */
export function parseCpuList(text: string, what = "CPU list"): number[] {
  const out = new Set<number>();
  const trimmed = text.trim();
  for (const part of trimmed === "" ? [] : trimmed.split(",")) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    const first = Number(m?.[1]);
    const last = m?.[2] === undefined ? first : Number(m[2]);
    if (m === null || last < first || last > 65535) {
      throw new UserError(
        `Cannot parse ${what} "${text}": expected numbers and ranges such as 0-3,5`,
      );
    }
    for (let i = first; i <= last; i++) out.add(i);
  }
  if (out.size === 0) {
    throw new UserError(
      `Cannot parse ${what} "${text}": expected numbers and ranges such as 0-3,5`,
    );
  }
  return [...out].sort((a, b) => a - b);
}

/** Formats sorted numbers as the kernel's list format: [0, 1, 2, 3, 5] -> "0-3,5". */
export function formatCpuList(numbers: readonly number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < numbers.length;) {
    let j = i;
    while (j + 1 < numbers.length && numbers[j + 1] === numbers[j]! + 1) j++;
    parts.push(i === j ? `${numbers[i]}` : `${numbers[i]}-${numbers[j]}`);
    i = j + 1;
  }
  return parts.join(",");
}

/**
 * Parses a `--cpuset-cpus` or `--cpuset-mems` value and checks it against the host's online
 * CPUs or memory nodes (`online`, in the kernel's list format). Returns the canonical list.
 */
export function parseCpuset(
  text: string,
  online: string,
  kind: { flag: string; unit: string },
): string {
  const wanted = parseCpuList(text, `${kind.flag} value`);
  const available = new Set(parseCpuList(online, `online ${kind.unit}s`));
  const missing = wanted.filter((n) => !available.has(n));
  if (missing.length > 0) {
    throw new UserError(
      `Invalid ${kind.flag} "${text}": ${kind.unit}${missing.length > 1 ? "s" : ""} ${
        formatCpuList(missing)
      } not available on this host, which has ${kind.unit}s ${online.trim()}`,
    );
  }
  return formatCpuList(wanted);
}

const BINARY_UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
const DECIMAL_UNITS = ["B", "kB", "MB", "GB", "TB", "PB"];

/** Go's %.Ng: N significant digits, no trailing zeros. */
function significant(value: number, digits: number): string {
  return String(Number(value.toPrecision(digits)));
}

function scaled(bytes: number, base: number, units: readonly string[], digits: number): string {
  let value = bytes;
  let i = 0;
  while (value >= base && i < units.length - 1) {
    value /= base;
    i++;
  }
  return `${significant(value, digits)}${units[i]}`;
}

/** Memory as `docker stats` prints it (go-units BytesSize): "5.297MiB", "7.607GiB", "0B". */
export function bytesSize(bytes: number): string {
  return scaled(bytes, 1024, BINARY_UNITS, 4);
}

/** Network and block I/O as `docker stats` prints them (go-units HumanSize): "1.23kB", "648B". */
export function humanSize(bytes: number): string {
  return scaled(bytes, 1000, DECIMAL_UNITS, 3);
}

/** Docker's `--ulimit` names and the resource each sets. */
const ULIMITS: Record<string, string> = {
  core: "RLIMIT_CORE",
  cpu: "RLIMIT_CPU",
  data: "RLIMIT_DATA",
  fsize: "RLIMIT_FSIZE",
  locks: "RLIMIT_LOCKS",
  memlock: "RLIMIT_MEMLOCK",
  msgqueue: "RLIMIT_MSGQUEUE",
  nice: "RLIMIT_NICE",
  nofile: "RLIMIT_NOFILE",
  nproc: "RLIMIT_NPROC",
  rss: "RLIMIT_RSS",
  rtprio: "RLIMIT_RTPRIO",
  rttime: "RLIMIT_RTTIME",
  sigpending: "RLIMIT_SIGPENDING",
  stack: "RLIMIT_STACK",
};

/**
 * `--ulimit NAME=SOFT[:HARD]` (Docker's form): the hard limit defaults to the soft one; -1 or
 * "unlimited" is no limit.
 */
export function parseUlimit(text: string): { type: string; soft: number; hard: number } {
  const match = /^([a-z]+)=([^:]+)(?::([^:]+))?$/.exec(text.trim());
  const type = match === null ? undefined : ULIMITS[match[1]!];
  const value = (v: string) =>
    v === "unlimited" || v === "-1" ? -1 : /^\d+$/.test(v) ? Number(v) : Number.NaN;
  if (match === null || type === undefined) {
    throw new UserError(
      `Invalid --ulimit "${text}": use NAME=SOFT[:HARD] with NAME one of ${
        Object.keys(ULIMITS).join(", ")
      }`,
    );
  }
  const soft = value(match[2]!);
  const hard = match[3] === undefined ? soft : value(match[3]);
  if (Number.isNaN(soft) || Number.isNaN(hard)) {
    throw new UserError(`Invalid --ulimit "${text}": the limits must be numbers or "unlimited"`);
  }
  if (hard !== -1 && (soft === -1 || soft > hard)) {
    throw new UserError(
      `Invalid --ulimit "${text}": the soft limit cannot be above the hard limit`,
    );
  }
  return { type, soft, hard };
}

/** Docker's `--restart` policy. */
export interface RestartPolicyFlag {
  name: "no" | "on-failure" | "always" | "unless-stopped";
  maximumRetryCount: number;
}

/**
 * Parses `--restart`: `no`, `on-failure[:N]`, `always`, `unless-stopped` (Docker's names; a
 * retry count only for on-failure).
 */
export function parseRestartPolicy(text: string): RestartPolicyFlag {
  const [name, count, ...rest] = text.split(":");
  const names = ["no", "on-failure", "always", "unless-stopped"];
  if (name === undefined || !names.includes(name) || rest.length > 0) {
    throw new UserError(
      `Invalid restart policy "${text}": expected no, on-failure[:max-retries], always or unless-stopped`,
    );
  }
  if (count !== undefined) {
    if (name !== "on-failure") {
      throw new UserError(
        `Invalid restart policy "${text}": a maximum retry count goes with on-failure only`,
      );
    }
    if (!/^\d+$/.test(count)) {
      throw new UserError(
        `Invalid restart policy "${text}": the maximum retry count must be a whole number`,
      );
    }
  }
  return {
    name: name as RestartPolicyFlag["name"],
    maximumRetryCount: count === undefined ? 0 : Number(count),
  };
}

/** Parses `--label KEY=VALUE` (or `KEY` alone, an empty value, as Docker). */
export function parseLabel(text: string): [string, string] {
  const eq = text.indexOf("=");
  const key = eq < 0 ? text : text.slice(0, eq);
  if (key === "" || /\s/.test(key)) {
    throw new UserError(`Invalid label ${JSON.stringify(text)}: expected KEY=VALUE`);
  }
  return [key, eq < 0 ? "" : text.slice(eq + 1)];
}
