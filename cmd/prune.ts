/**
 * Removing what is not in use, as Docker's prune commands do, each after a confirmation unless
 * `-f`: `container prune` (stopped containers), `image prune` (dangling images, or with `-a`
 * every image no container uses), `system prune` (both, and unused networks), and
 * mini-docker's own `prune` (stopped containers and what interrupted runs left). `system df`
 * shows what they would reclaim.
 */
import { Command } from "@commander-js/extra-typings";
import { containerConfig, type ContainerState, listStates, stateDir } from "../container/state.ts";
import { cleanupStale, removeContainer } from "../container/lifecycle.ts";
import { diskUsage } from "../base/paths.ts";
import { EXIT_FAILURE, UserError } from "../base/errors.ts";
import { parseTime } from "../base/time.ts";
import { formatSize } from "../images/progress.ts";
import { listImages, removeImages } from "../images/catalog.ts";
import { ImageStore } from "../images/store.ts";
import { parseImageConfig } from "../images/config.ts";
import { type Filters, labelsMatch, parseFilters } from "./filters.ts";
import { confirm } from "./prompt.ts";
import { TABLE_MIN_WIDTH, tabulate } from "./format.ts";
import { commandText, imageText, statusText } from "./ps.ts";
import { humanAgo } from "./images.ts";
import { pruneNetworks } from "./network.ts";
import { shortId } from "../images/digest.ts";
// Volumes (issue 14).
import { pruneUnusedVolumes } from "./volume.ts";
import { listVolumes, volumeUsers } from "../volumes/store.ts";
import { volumeLiveness } from "../container/state.ts";

const collect = (value: string, previous: string[]) => [...previous, value];
const FILTERS = ["until", "label"];

/**
 * Docker's `until` filter: a duration before now ("10m", "2h30m") or a time (RFC 3339, a date, a
 * Unix timestamp). Returns the cut-off in ms since the epoch.
 */
export function parseUntil(value: string, now = Date.now()): number {
  if (/^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/.test(value)) {
    const unit: Record<string, number> = {
      ns: 1e-6,
      us: 1e-3,
      "µs": 1e-3,
      ms: 1,
      s: 1e3,
      m: 60e3,
      h: 3600e3,
    };
    let ms = 0;
    for (const m of value.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) {
      ms += Number(m[1]) * unit[m[2]!]!;
    }
    return now - ms;
  }
  if (/^\d+(\.\d+)?$/.test(value)) return Number(value) * 1000;
  const t = Date.parse(value);
  if (Number.isNaN(t)) {
    throw new UserError(
      `Invalid filter "until=${value}": expected a duration (10m, 2h) or a time (2024-05-01T12:00:00Z)`,
      EXIT_FAILURE,
    );
  }
  return t;
}

/** Reads the filters of a prune, checking their values before anything is asked or done. */
function pruneFilters(flags: readonly string[]): Filters {
  const filters = parseFilters(flags, FILTERS);
  for (const value of filters.get("until") ?? []) parseUntil(value);
  return filters;
}

/** Whether something created at `created`, with `labels`, passes `until` and `label`. */
function passes(filters: Filters, created: number, labels: Record<string, string>): boolean {
  const until = (filters.get("until") ?? []).map((v) => parseUntil(v));
  return until.every((t) => created < t) && labelsMatch(filters, labels);
}

/** Removes the stopped containers the filters let through; their ids and reclaimed bytes. */
async function pruneContainers(filters: Filters): Promise<{ ids: string[]; bytes: number }> {
  const ids: string[] = [];
  let bytes = 0;
  for (const s of listStates()) {
    if (s.status !== "exited" && s.status !== "created") continue;
    if (!passes(filters, parseTime(s.created), containerConfig(s).labels)) continue;
    const size = diskUsage(`${stateDir(s.id)}/upper`);
    try {
      await removeContainer(s, false);
    } catch (err) {
      // Started (or removed) meanwhile: not stopped after all.
      if (err instanceof UserError) continue;
      throw err;
    }
    ids.push(s.id);
    bytes += size;
  }
  return { ids, bytes };
}

/**
 * Removes the images no container uses: dangling ones (no tag), or with `all` every one. Their
 * lines (Docker's "untagged: ...", "deleted: ...") and the bytes reclaimed.
 */
async function pruneImages(
  all: boolean,
  filters: Filters,
): Promise<{ lines: string[]; bytes: number }> {
  const store = new ImageStore();
  const used = new Set(listStates().map((s) => s.image).filter((i) => i !== undefined));
  const labelsOf = (id: string) => {
    const bytes = store.readBlob(id);
    return bytes === null ? {} : parseImageConfig(bytes).config.Labels ?? {};
  };
  const candidates = new Map<string, boolean>(); // id -> dangling
  for (const row of listImages(store)) {
    const dangling = row.tag === "<none>";
    candidates.set(row.id, (candidates.get(row.id) ?? true) && dangling);
  }
  const ids = [...candidates].filter(([id, dangling]) => {
    if (used.has(id) || !(all || dangling)) return false;
    const record = store.readIndex().images[id];
    return passes(filters, Date.parse(record?.created ?? record?.added ?? "") || 0, labelsOf(id));
  }).map(([id]) => id);
  if (ids.length === 0) return { lines: [], bytes: 0 };
  const before = diskUsage(`${store.root}/layers`);
  const usersOf = (id: string) =>
    listStates().filter((s) => s.image === id).map((s) => s.id.slice(0, 12));
  const lines: string[] = [];
  for (const id of ids) {
    try {
      for (const line of await removeImages([id], usersOf, { force: true, store })) {
        lines.push(line.replace(/^Untagged:/, "untagged:").replace(/^Deleted:/, "deleted:"));
      }
    } catch (err) {
      // A container started on it meanwhile: in use after all.
      if (!(err instanceof UserError)) throw err;
    }
  }
  return { lines, bytes: Math.max(0, before - diskUsage(`${store.root}/layers`)) };
}

function reclaimed(bytes: number): string {
  return `Total reclaimed space: ${formatSize(bytes)}`;
}

/** `container prune`. */
export function containerPruneCommand() {
  return new Command("prune")
    .description("Remove all stopped containers")
    .option("-f, --force", "do not ask for confirmation")
    .option(
      "--filter <NAME=VALUE>",
      "until=DURATION|TIME, label=KEY[=VALUE]",
      collect,
      [] as string[],
    )
    .action(async (opts) => {
      const filters = pruneFilters(opts.filter);
      if (!opts.force && !await confirm("WARNING! This will remove all stopped containers.")) {
        return;
      }
      await cleanupStale();
      const { ids, bytes } = await pruneContainers(filters);
      if (ids.length > 0) console.log(`Deleted Containers:\n${ids.join("\n")}\n`);
      console.log(reclaimed(bytes));
    });
}

/** `image prune`. */
export function imagePruneCommand() {
  return new Command("prune")
    .description("Remove unused images: dangling ones, or with -a every one no container uses")
    .option("-a, --all", "remove every image that no container uses, not only dangling ones")
    .option("-f, --force", "do not ask for confirmation")
    .option(
      "--filter <NAME=VALUE>",
      "until=DURATION|TIME, label=KEY[=VALUE]",
      collect,
      [] as string[],
    )
    .action(async (opts) => {
      const filters = pruneFilters(opts.filter);
      const warning = opts.all
        ? "WARNING! This will remove all images without at least one container associated to them."
        : "WARNING! This will remove all dangling images.";
      if (!opts.force && !await confirm(warning)) return;
      const { lines, bytes } = await pruneImages(opts.all === true, filters);
      if (lines.length > 0) console.log(`Deleted Images:\n${lines.join("\n")}\n`);
      console.log(reclaimed(bytes));
    });
}

/** `system prune`. */
export function systemPruneCommand() {
  return new Command("prune")
    .description("Remove stopped containers, unused networks and dangling (-a: unused) images")
    .option("-a, --all", "remove every image that no container uses, not only dangling ones")
    .option("-f, --force", "do not ask for confirmation")
    .option("--volumes", "remove anonymous volumes no container uses too")
    .option(
      "--filter <NAME=VALUE>",
      "until=DURATION|TIME, label=KEY[=VALUE]",
      collect,
      [] as string[],
    )
    .action(async (opts) => {
      const filters = pruneFilters(opts.filter);
      const images = opts.all
        ? "all images without at least one container associated to them"
        : "all dangling images";
      const warning = [
        "WARNING! This will remove:",
        "  - all stopped containers",
        "  - all networks not used by at least one container",
        ...(opts.volumes ? ["  - all anonymous volumes not used by at least one container"] : []),
        `  - ${images}`,
        "",
      ].join("\n");
      if (!opts.force && !await confirm(warning)) return;
      await cleanupStale();
      const containers = await pruneContainers(filters);
      if (containers.ids.length > 0) {
        console.log(`Deleted Containers:\n${containers.ids.join("\n")}\n`);
      }
      // Networks have no labels: a label filter keeps them all.
      const networks = await pruneNetworks((n) => passes(filters, Date.parse(n.created), {}));
      if (networks.length > 0) console.log(`Deleted Networks:\n${networks.join("\n")}\n`);
      // Volumes (issue 14): the anonymous ones, with --volumes (Docker 23+).
      const volumes = opts.volumes
        ? pruneUnusedVolumes(false, new Map([["label", filters.get("label") ?? []]]))
        : { names: [], bytes: 0 };
      if (volumes.names.length > 0) console.log(`Deleted Volumes:\n${volumes.names.join("\n")}\n`);
      const removed = await pruneImages(opts.all === true, filters);
      if (removed.lines.length > 0) console.log(`Deleted Images:\n${removed.lines.join("\n")}\n`);
      console.log(reclaimed(containers.bytes + volumes.bytes + removed.bytes));
    });
}

/** mini-docker's own `prune`: stopped containers, and what interrupted runs left. */
export function pruneCommand() {
  return new Command("prune")
    .description("Remove all stopped containers, and leftovers of interrupted runs")
    .option("-f, --force", "do not ask for confirmation")
    .addHelpText(
      "after",
      `
Leftovers are the cgroups, state, layers and run files of containers whose mini-docker was
killed (SIGKILL) before it could clean up: they are removed as soon as their process is gone.
"container prune" is Docker's spelling.

Examples:
  mini-docker prune -f`,
    )
    .action(async (opts) => {
      if (!opts.force && !await confirm("WARNING! This will remove all stopped containers.")) {
        return;
      }
      const deleted = await cleanupStale();
      const { ids, bytes } = await pruneContainers(new Map());
      console.log("Deleted Containers:");
      for (const id of [...deleted, ...ids]) console.log(id);
      console.log(`\n${reclaimed(bytes)}`);
    });
}

/** One container's line of `system df -v`. */
function containerUsage(s: ContainerState): { size: number; row: string[] } {
  const size = diskUsage(`${stateDir(s.id)}/upper`);
  return {
    size,
    row: [
      s.id.slice(0, 12),
      imageText(s),
      JSON.stringify(commandText(s.command)),
      "0",
      formatSize(size),
      humanAgo(parseTime(s.created), Date.now()),
      statusText(s),
      s.name,
    ],
  };
}

/** `system df`: what images and containers take, and what prune would reclaim. */
export function systemDfCommand() {
  return new Command("df")
    .description("Show the disk space used by images and containers")
    .option("-v, --verbose", "one line per image and container")
    .action((opts) => {
      const store = new ImageStore();
      const index = store.readIndex();
      const states = listStates();
      const used = new Set(states.map((s) => s.image).filter((i) => i !== undefined));
      // A layer counts once, whatever number of images share it.
      const layerSize = new Map<string, number>();
      const users = new Map<string, number>();
      for (const record of Object.values(index.images)) {
        for (const diffId of record.layers) {
          if (!layerSize.has(diffId)) {
            let size = 0;
            try {
              size = store.layerInfo(diffId).size;
            } catch { /* damaged: none */ }
            layerSize.set(diffId, size);
          }
          users.set(diffId, (users.get(diffId) ?? 0) + 1);
        }
      }
      const sum = (ids: Iterable<string>) => [...ids].reduce((n, d) => n + layerSize.get(d)!, 0);
      const inUse = new Set(
        Object.values(index.images).filter((r) => used.has(r.id)).flatMap((r) => r.layers),
      );
      const imageTotal = sum(layerSize.keys());
      const imageReclaim = sum([...layerSize.keys()].filter((d) => !inUse.has(d)));
      const containers = states.map(containerUsage);
      const stopped = states.map((s, i) => ({ s, size: containers[i]!.size }))
        .filter(({ s }) => s.status !== "running");
      const containerTotal = containers.reduce((n, c) => n + c.size, 0);
      const containerReclaim = stopped.reduce((n, c) => n + c.size, 0);
      const volumes = listVolumes().map((v) => ({
        name: v.Name,
        links: volumeUsers(v.Name, volumeLiveness).length,
        size: diskUsage(v.Mountpoint),
      }));
      const volumeTotal = volumes.reduce((n, v) => n + v.size, 0);
      const volumeReclaim = volumes.filter((v) => v.links === 0).reduce((n, v) => n + v.size, 0);
      const percent = (part: number, whole: number) =>
        whole === 0 ? "" : ` (${Math.round((part / whole) * 100)}%)`;
      const summary = tabulate([
        ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"],
        [
          "Images",
          String(Object.keys(index.images).length),
          String(used.size),
          formatSize(imageTotal),
          `${formatSize(imageReclaim)}${percent(imageReclaim, imageTotal)}`,
        ],
        [
          "Containers",
          String(states.length),
          String(states.length - stopped.length),
          formatSize(containerTotal),
          `${formatSize(containerReclaim)}${percent(containerReclaim, containerTotal)}`,
        ],
        // Volumes (issue 14).
        [
          "Local Volumes",
          String(volumes.length),
          String(volumes.filter((v) => v.links > 0).length),
          formatSize(volumeTotal),
          `${formatSize(volumeReclaim)}${percent(volumeReclaim, volumeTotal)}`,
        ],
        ["Build Cache", "0", "0", "0B", "0B"],
      ], TABLE_MIN_WIDTH);
      if (!opts.verbose) {
        for (const line of summary) console.log(line);
        return;
      }
      console.log("Images space usage:\n");
      const imageRows = listImages(store).map((r) => {
        const layers = index.images[r.id]?.layers ?? [];
        const shared = sum(layers.filter((d) => (users.get(d) ?? 0) > 1));
        return [
          r.repository,
          r.tag,
          shortId(r.id),
          r.created ? humanAgo(Date.parse(r.created), Date.now()) : "N/A",
          formatSize(r.size),
          formatSize(shared),
          formatSize(r.size - shared),
          String(states.filter((s) => s.image === r.id).length),
        ];
      });
      const imageHeader = [
        "REPOSITORY",
        "TAG",
        "IMAGE ID",
        "CREATED",
        "SIZE",
        "SHARED SIZE",
        "UNIQUE SIZE",
        "CONTAINERS",
      ];
      for (const line of tabulate([imageHeader, ...imageRows], TABLE_MIN_WIDTH)) console.log(line);
      console.log("\nContainers space usage:\n");
      const containerHeader = [
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "LOCAL VOLUMES",
        "SIZE",
        "CREATED",
        "STATUS",
        "NAMES",
      ];
      for (
        const line of tabulate([containerHeader, ...containers.map((c) => c.row)], TABLE_MIN_WIDTH)
      ) {
        console.log(line);
      }
      console.log("\nLocal Volumes space usage:\n");
      const volumeRows = volumes.map((v) => [v.name, String(v.links), formatSize(v.size)]);
      for (
        const line of tabulate([["VOLUME NAME", "LINKS", "SIZE"], ...volumeRows], TABLE_MIN_WIDTH)
      ) {
        console.log(line);
      }
      console.log("\nBuild cache usage: 0B");
    });
}
