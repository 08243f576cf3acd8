/**
 * `mini-docker volume`: create, list, inspect, remove and prune volumes, with Docker's options
 * and output shapes. The store is volumes/store.ts; which containers exist is the engine's.
 */
import { Command } from "@commander-js/extra-typings";
import { EXIT_FAILURE, UserError } from "../base/errors.ts";
import { diskUsage } from "../base/paths.ts";
import {
  createVolume,
  findVolume,
  listVolumes,
  pruneVolumes,
  removeStaleVolumeEntries,
  removeVolume,
  type Volume,
  volumeUsers,
} from "../volumes/store.ts";
import { volumeLiveness } from "../container/state.ts";
import { formatSize } from "../images/progress.ts";
import { parseLabel } from "./units.ts";
import { formatList } from "./format.ts";
import { type Filters, labelsMatch, parseFilters } from "./filters.ts";
import { inspectTemplate, TemplateParseError } from "./template.ts";
import { confirm } from "./prompt.ts";

const collect = (value: string, previous: string[]) => [...previous, value];

function createCommand() {
  return new Command("create")
    .description("Create a volume")
    .argument("[name]", "its name (default: a random 64-hex-digit one)")
    .option("-d, --driver <driver>", 'the volume driver: "local" only', "local")
    .option("-l, --label <KEY=VALUE>", "a label (repeatable)", collect, [] as string[])
    .option(
      "-o, --opt <KEY=VALUE>",
      "a driver option: none is supported by this local driver (it refuses them)",
      collect,
      [] as string[],
    )
    .addHelpText(
      "after",
      `
A volume is a directory under the data root (<root>/volumes/NAME/_data) that containers mount
with "run -v NAME:/path"; it outlives them. "run -v NAME:..." creates it when it is missing.

Examples:
  mini-docker volume create data
  mini-docker volume create -l project=web cache`,
    )
    .action((name, opts) => {
      if (opts.driver !== "local") {
        throw new UserError(`Invalid --driver "${opts.driver}": only "local" is supported`);
      }
      if (opts.opt.length > 0) {
        throw new UserError(
          `Invalid --opt "${
            opts.opt[0]
          }": the local driver's mount options (type, device, o) are not supported: volumes are directories`,
        );
      }
      const labels = Object.fromEntries(opts.label.map(parseLabel));
      console.log(createVolume(name, labels).Name);
    });
}

const LS_FILTERS = ["dangling", "name", "label", "driver"];

/** The volumes the filters let through (`users` tells whether a volume is held). */
function filterVolumes(volumes: Volume[], filters: Filters): Volume[] {
  const dangling = filters.get("dangling")?.map((v) => {
    if (/^(true|1)$/i.test(v)) return true;
    if (/^(false|0)$/i.test(v)) return false;
    throw new UserError(`Invalid filter "dangling=${v}": expected true or false`, EXIT_FAILURE);
  });
  return volumes.filter((v) =>
    (dangling === undefined ||
      dangling.includes(volumeUsers(v.Name, volumeLiveness).length === 0)) &&
    (!filters.has("name") || filters.get("name")!.some((n) => v.Name.includes(n))) &&
    (!filters.has("driver") || filters.get("driver")!.includes(v.Driver)) &&
    labelsMatch(filters, v.Labels)
  );
}

function lsCommand() {
  return new Command("ls")
    .alias("list")
    .description("List volumes")
    .option("-q, --quiet", "only display volume names")
    .option(
      "-f, --filter <NAME=VALUE>",
      `filter by ${LS_FILTERS.join(", ")} (repeatable)`,
      collect,
      [] as string[],
    )
    .option("--format <template>", "table, table TEMPLATE, json, or a Go template")
    .addHelpText(
      "after",
      `
Examples:
  mini-docker volume ls --filter dangling=true      held by no container
  mini-docker volume ls --format '{{.Name}} {{.Mountpoint}}'`,
    )
    .action((opts) => {
      const volumes = filterVolumes(listVolumes(), parseFilters(opts.filter, LS_FILTERS));
      if (opts.quiet) {
        for (const v of volumes) console.log(v.Name);
        return;
      }
      const rows = volumes.map((v) => ({
        ...v,
        Labels: Object.entries(v.Labels).map(([k, val]) => `${k}=${val}`).sort().join(","),
        Label: (key: string) => v.Labels[key] ?? "",
        Links: String(volumeUsers(v.Name, volumeLiveness).length),
        Size: "N/A",
      }));
      let lines: string[];
      try {
        lines = formatList(rows, opts.format, {
          table: "table {{.Driver}}\t{{.Name}}",
          headers: {
            Driver: "DRIVER",
            Name: "VOLUME NAME",
            Mountpoint: "MOUNTPOINT",
            Labels: "LABELS",
            Scope: "SCOPE",
            CreatedAt: "CREATED",
            Links: "LINKS",
            Size: "SIZE",
          },
        });
      } catch (err) {
        if (err instanceof TemplateParseError) throw new UserError(err.message, 64);
        throw err;
      }
      for (const line of lines) console.log(line);
    });
}

function inspectCommand() {
  return new Command("inspect")
    .description("Show volumes as JSON (Docker's fields)")
    .argument("<volume...>", "volume names")
    .option("-f, --format <template>", "a template such as '{{.Mountpoint}}'")
    .action((names, opts) => {
      const template = opts.format === undefined ? undefined : inspectTemplate(opts.format);
      const found = names.map(findVolume);
      if (template !== undefined) {
        for (const v of found) console.log(template.render({ ...v }));
      } else {
        console.log(JSON.stringify(found, null, 4));
      }
    });
}

function rmCommand() {
  return new Command("rm")
    .alias("remove")
    .description("Remove volumes (refused while a container, running or stopped, uses one)")
    .argument("<volume...>", "volume names")
    .option("-f, --force", "no error for a volume that does not exist")
    .action((names, opts) => {
      let failed: unknown;
      for (const name of names) {
        try {
          removeVolume(name, volumeLiveness);
          console.log(name);
        } catch (err) {
          if (opts.force && err instanceof UserError && /^No such volume/.test(err.message)) {
            continue;
          }
          // Every volume is tried; the first failure is reported, the others printed.
          if (failed === undefined) failed = err;
          else console.error(`mini-docker: ${(err as Error).message}`);
        }
      }
      if (failed !== undefined) throw failed;
    });
}

const PRUNE_FILTERS = ["label", "label!"];

/** Removes the unused volumes (anonymous ones, or all with `all`); their names and bytes. */
export function pruneUnusedVolumes(
  all: boolean,
  filters: Filters = new Map(),
): { names: string[]; bytes: number } {
  removeStaleVolumeEntries(volumeLiveness);
  const without = filters.get("label!") ?? [];
  return pruneVolumes(
    all,
    volumeLiveness,
    (v) =>
      labelsMatch(filters, v.Labels) &&
      !without.some((w) => labelsMatch(new Map([["label", [w]]]), v.Labels)),
    diskUsage,
  );
}

function pruneCommand() {
  return new Command("prune")
    .description("Remove the anonymous volumes no container uses (every unused one with -a)")
    .option("-a, --all", "remove every unused volume, named ones too")
    .option("-f, --force", "do not ask for confirmation")
    .option("--filter <NAME=VALUE>", "label=KEY[=VALUE] or label!=... (repeatable)", collect, [
      // commander's default for a list
    ] as string[])
    .action(async (opts) => {
      const filters = parseFilters(opts.filter, PRUNE_FILTERS);
      const what = opts.all ? "all local volumes" : "all anonymous local volumes";
      if (
        !opts.force &&
        !await confirm(`WARNING! This will remove ${what} not used by at least one container.`)
      ) {
        return;
      }
      const { names, bytes } = pruneUnusedVolumes(opts.all === true, filters);
      if (names.length > 0) console.log(`Deleted Volumes:\n${names.join("\n")}\n`);
      console.log(`Total reclaimed space: ${formatSize(bytes)}`);
    });
}

/** The `volume` command and its subcommands. */
export function volumeCommand() {
  return new Command("volume")
    .description("Manage volumes")
    .addCommand(createCommand())
    .addCommand(lsCommand())
    .addCommand(inspectCommand())
    .addCommand(rmCommand())
    .addCommand(pruneCommand())
    .addHelpText(
      "after",
      `
Examples:
  mini-docker volume create data
  mini-docker run -d --name db -v data:/var/lib/db /bin/sh -c 'echo hi >/var/lib/db/x; sleep 600'
  mini-docker run -v data:/data:ro /bin/cat /data/x       another container, read-only
  mini-docker volume ls
  mini-docker volume rm data                              refused while a container uses it`,
    );
}
