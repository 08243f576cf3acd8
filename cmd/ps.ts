/**
 * `mini-docker ps` (and `container ls`): containers, with Docker's columns, filters
 * (`--filter`), formats (`--format`), `-n`/`--last`, `-l`, `--no-trunc` and `-s`.
 */
import { Command } from "@commander-js/extra-typings";
import {
  containerConfig,
  type ContainerState,
  displayStatus,
  listStates,
  matchContainer,
  stateDir,
} from "../container/state.ts";
import { cleanupStale } from "../container/lifecycle.ts";
import { formatList, humanDuration, type ListFormat } from "./format.ts";
import { formatPort } from "./publish.ts";
import { publishedPorts } from "./port.ts";
import type { ContainerSpec } from "../base/spec.ts";
import { diskUsage } from "../base/paths.ts";
import { EXIT_FAILURE, UserError } from "../base/errors.ts";
import { type Filters, labelsMatch, parseFilters } from "./filters.ts";
import { formatSize } from "../images/progress.ts";
import { ImageStore } from "../images/store.ts";
import { findImage } from "../images/catalog.ts";
import { parseTime } from "../base/time.ts";

const collect = (value: string, previous: string[]) => [...previous, value];

/** The container statuses Docker's status filter knows. */
const STATUSES = ["created", "restarting", "running", "removing", "paused", "exited", "dead"];
const FILTERS = ["id", "name", "status", "exited", "ancestor", "label", "before", "since"];

/** Docker's columns: header names of the fields of a row. */
export const CONTAINER_FORMAT: ListFormat = {
  table:
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}",
  headers: {
    ID: "CONTAINER ID",
    Image: "IMAGE",
    Command: "COMMAND",
    CreatedAt: "CREATED AT",
    RunningFor: "CREATED",
    Ports: "PORTS",
    State: "STATE",
    Status: "STATUS",
    Size: "SIZE",
    Names: "NAMES",
    Labels: "LABELS",
    Mounts: "MOUNTS",
    Networks: "NETWORKS",
    LocalVolumes: "LOCAL VOLUMES",
  },
};

/** The spec a container was started with (undefined before its first start). */
function readSpec(s: ContainerState): ContainerSpec | undefined {
  try {
    return JSON.parse(Deno.readTextFileSync(`${stateDir(s.id)}/config.json`));
  } catch {
    return undefined;
  }
}

/**
 * Docker's PORTS column: the published ports of a running container, then the ports its image or
 * --expose exposes that nothing publishes ("80/tcp").
 */
async function portsText(s: ContainerState, spec: ContainerSpec | undefined): Promise<string> {
  if (s.status !== "running") return "";
  const published = await publishedPorts(s);
  const exposed = spec?.network?.exposedPorts ?? [];
  const shown = new Set(published.map((p) => `${p.containerPort}/${p.protocol}`));
  return [...published.map(formatPort), ...exposed.filter((e) => !shown.has(e))].join(", ");
}

/** Docker's STATUS column: "Up 5 seconds", "Exited (0) 3 seconds ago", "Created". */
export function statusText(s: ContainerState, now = Date.now()): string {
  const since = (time: string | undefined) => humanDuration(now - parseTime(time ?? s.created));
  if (s.status === "running") return `Up ${since(s.startedAt)}${s.paused ? " (Paused)" : ""}`;
  if (s.status === "exited") return `Exited (${s.exitCode ?? 255}) ${since(s.finishedAt)} ago`;
  if (s.status === "restarting") {
    return `Restarting (${s.exitCode ?? 255}) ${since(s.finishedAt)} ago`;
  }
  return "Created";
}

/**
 * The IMAGE column: the image as the user named it, or for a root filesystem directory its
 * last component (the whole path is in `inspect`).
 */
export function imageText(s: ContainerState): string {
  if (s.imageRef !== undefined) return s.imageRef;
  if (s.rootfs !== undefined) return s.rootfs.slice(s.rootfs.lastIndexOf("/") + 1);
  return "";
}

/** Docker's Command: the path and its arguments, those with a space in single quotes. */
export function commandText(command: readonly string[]): string {
  return command.map((a, i) => (i > 0 && a.includes(" ") ? `'${a}'` : a)).join(" ");
}

/** Go's time.String() in UTC: "2024-05-01 12:00:00 +0000 UTC". */
function goTime(iso: string): string {
  return `${new Date(parseTime(iso)).toISOString().slice(0, 19).replace("T", " ")} +0000 UTC`;
}

/** One container as `--format` sees it (Docker's field names). */
async function row(
  s: ContainerState,
  opts: { trunc: boolean; size: boolean },
): Promise<Record<string, unknown>> {
  const spec = readSpec(s);
  const labels = containerConfig(s).labels;
  let command = commandText(s.command);
  if (opts.trunc && [...command].length > 20) command = `${[...command].slice(0, 19).join("")}…`;
  let size = "0B";
  if (opts.size) {
    const rw = diskUsage(`${stateDir(s.id)}/upper`);
    size = `${formatSize(rw)} (virtual ${formatSize(rw + baseSize(s))})`;
  }
  const network = spec?.network?.mode ??
    (spec?.linux.namespaces.some((n) => n.type === "network") ? "none" : "host");
  return {
    Command: JSON.stringify(command),
    CreatedAt: goTime(s.created),
    ID: opts.trunc ? s.id.slice(0, 12) : s.id,
    Image: imageText(s),
    Labels: Object.entries(labels).map(([k, v]) => `${k}=${v}`).sort().join(","),
    LocalVolumes: "0",
    Mounts: "",
    Names: s.name,
    Networks: spec === undefined ? "" : network,
    Ports: await portsText(s, spec),
    RunningFor: `${humanDuration(Date.now() - parseTime(s.created))} ago`,
    Size: size,
    State: displayStatus(s),
    Status: statusText(s),
    Label: (key: string) => labels[key] ?? "",
  };
}

/** The size of what a container's writable layer sits on: its image, or its rootfs directory. */
function baseSize(s: ContainerState): number {
  if (s.image !== undefined) {
    return new ImageStore().readIndex().images[s.image]?.size ?? 0;
  }
  return s.rootfs === undefined ? 0 : diskUsage(s.rootfs);
}

/** The containers the filters let through, in `states`' order (newest first). */
export function filterContainers(
  states: readonly ContainerState[],
  filters: Filters,
): ContainerState[] {
  for (const status of filters.get("status") ?? []) {
    if (!STATUSES.includes(status)) {
      throw new UserError(
        `Invalid filter "status=${status}": the statuses are ${STATUSES.join(", ")}`,
        EXIT_FAILURE,
      );
    }
  }
  const exited = (filters.get("exited") ?? []).map((code) => {
    if (!/^-?\d+$/.test(code)) {
      throw new UserError(`Invalid filter "exited=${code}": expected an exit code`, EXIT_FAILURE);
    }
    return Number(code);
  });
  const names = (filters.get("name") ?? []).map((n) => {
    try {
      return new RegExp(n);
    } catch (err) {
      throw new UserError(`Invalid filter "name=${n}": ${(err as Error).message}`, EXIT_FAILURE);
    }
  });
  const created = (ref: string) => parseTime(matchContainer(ref, states).created);
  const before = (filters.get("before") ?? []).map(created);
  const since = (filters.get("since") ?? []).map(created);
  const ancestors = filters.get("ancestor");
  const imageIds = ancestors === undefined ? [] : ancestorIds(ancestors);
  const any = <T>(values: T[] | undefined, test: (v: T) => boolean) =>
    values === undefined || values.length === 0 || values.some(test);
  return states.filter((s) =>
    any(filters.get("id"), (id) => s.id.startsWith(id)) &&
    any(names, (re) => re.test(s.name) || re.test(`/${s.name}`)) &&
    any(filters.get("status"), (st) => st === displayStatus(s)) &&
    any(exited, (code) => s.status === "exited" && s.exitCode === code) &&
    labelsMatch(filters, containerConfig(s).labels) &&
    before.every((t) => parseTime(s.created) < t) &&
    since.every((t) => parseTime(s.created) > t) &&
    any(ancestors, (a) =>
      (s.image !== undefined && imageIds.includes(s.image)) || s.imageRef === a ||
      (s.rootfs !== undefined && (s.rootfs === a || imageText(s) === a)))
  );
}

/** The image ids that `ancestor` values name (names, references or ids); unknown ones none. */
function ancestorIds(values: readonly string[]): string[] {
  let index;
  try {
    index = new ImageStore().readIndex();
  } catch {
    return [];
  }
  return values.flatMap((v) => {
    try {
      const found = findImage(index, v);
      return found === null ? [] : [found.record.id];
    } catch {
      return [];
    }
  });
}

/** The `ps` command, or `ls` of `container`. */
export function psCommand(name = "ps") {
  return new Command(name)
    .description("List containers")
    .option("-a, --all", "show all containers (default: running only)")
    .option("-q, --quiet", "only display container ids")
    .option("--no-trunc", "do not truncate ids and commands")
    .option("-n, --last <number>", "show the n last created containers (all states)")
    .option("-l, --latest", "show the last created container (all states)")
    .option("-s, --size", "show the size of each container's writable layer")
    .option(
      "-f, --filter <NAME=VALUE>",
      `filter by ${FILTERS.join(", ")} (repeatable)`,
      collect,
      [] as string[],
    )
    .option("--format <template>", "table, table TEMPLATE, json, or a Go template")
    .addHelpText(
      "after",
      `
Examples:
  mini-docker ps                                 running containers
  mini-docker ps -a                              all containers, with their exit codes
  mini-docker ps -f status=exited -f label=tier=web
  mini-docker ps --format '{{.Names}}: {{.Status}}'
  mini-docker ps -a --format json                one JSON object per container
  mini-docker rm $(mini-docker ps -aq)`,
    )
    .action(async (opts) => {
      const filters = parseFilters(opts.filter, FILTERS);
      let last = opts.latest ? 1 : undefined;
      if (opts.last !== undefined) {
        if (!/^-?\d+$/.test(opts.last)) {
          throw new UserError(`Invalid --last "${opts.last}": expected a number of containers`);
        }
        last = Number(opts.last) < 0 ? undefined : Number(opts.last);
      }
      await cleanupStale();
      // Docker's rules: stopped containers with -a, -n, a status filter, before or since.
      const all = opts.all || last !== undefined ||
        ["status", "before", "since"].some((f) => filters.has(f));
      let states = filterContainers(listStates(), filters)
        .filter((s) => all || s.status === "running");
      if (last !== undefined) states = states.slice(0, last);
      const trunc = opts.trunc !== false;
      if (opts.quiet) {
        for (const s of states) console.log(trunc ? s.id.slice(0, 12) : s.id);
        return;
      }
      const size = opts.size === true || (opts.format ?? "").includes(".Size");
      let format = opts.format;
      if ((format === undefined || format === "table") && opts.size) {
        format = `${CONTAINER_FORMAT.table}\t{{.Size}}`;
      }
      const rows = await Promise.all(states.map((s) => row(s, { trunc, size })));
      for (const line of formatList(rows, format, CONTAINER_FORMAT)) console.log(line);
    });
}
