/**
 * `images [OPTIONS] [REPOSITORY[:TAG]]` (and `image ls`): the images in the store, with Docker's
 * columns, filters (dangling, label, before, since, reference), formats and `--no-trunc`.
 */

import { formatList, humanDuration, type ListFormat } from "./format.ts";
import { Command } from "@commander-js/extra-typings";
import { findImage, type ImageRow, listImages } from "../images/catalog.ts";
import { formatSize } from "../images/progress.ts";
import { familiarName, parseReference, repositoryName } from "../images/reference.ts";
import { shortId } from "../images/digest.ts";
import { parseImageConfig } from "../images/config.ts";
import { ImageStore } from "../images/store.ts";
import { EXIT_FAILURE, UserError } from "../base/errors.ts";
import { booleanFilter, type Filters, labelsMatch, parseFilters } from "./filters.ts";

const collect = (value: string, previous: string[]) => [...previous, value];
const FILTERS = ["dangling", "label", "before", "since", "reference"];

/** Docker's image columns. */
export const IMAGE_FORMAT: ListFormat = {
  table: "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}",
  headers: {
    ID: "IMAGE ID",
    Repository: "REPOSITORY",
    Tag: "TAG",
    Digest: "DIGEST",
    CreatedSince: "CREATED",
    CreatedAt: "CREATED AT",
    Size: "SIZE",
    Containers: "CONTAINERS",
    SharedSize: "SHARED SIZE",
    UniqueSize: "UNIQUE SIZE",
    VirtualSize: "VIRTUAL SIZE",
  },
};

/** The `images` command (`ls` of `image`); `out` receives the lines (stdout by default). */
export function imagesCommand(
  out: (line: string) => void = (line) => console.log(line),
  name = "images",
) {
  return new Command(name)
    .description("List images")
    .argument("[repository]", "only this REPOSITORY[:TAG]")
    .option("-q, --quiet", "only show image ids")
    .option("--no-trunc", "show whole image ids")
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
  mini-docker images                            every tag of every image
  mini-docker images -f dangling=true           images without a tag
  mini-docker images --format '{{.Repository}}:{{.Tag}} {{.Size}}'`,
    )
    .action((repository, opts) => {
      const filters = parseFilters(opts.filter, FILTERS);
      let rows = filterImages(listImages(), filters);
      if (repository !== undefined) {
        const ref = parseReference(repository);
        const repo = familiarName(repositoryName(ref));
        const explicitTag = repository.slice(repository.lastIndexOf("/") + 1).includes(":");
        const tag = explicitTag ? ref.tag : undefined;
        rows = rows.filter((r) => r.repository === repo && (tag === undefined || r.tag === tag));
      }
      const trunc = opts.trunc !== false;
      if (opts.quiet) {
        for (const row of rows) out(trunc ? shortId(row.id) : row.id);
        return;
      }
      for (const line of formatImages(rows, opts.format, trunc)) out(line);
    });
}

/** The images the filters let through. */
export function filterImages(
  rows: readonly ImageRow[],
  filters: Filters,
  store = new ImageStore(),
): ImageRow[] {
  const dangling = booleanFilter(filters, "dangling");
  const index = store.readIndex();
  const createdOf = (ref: string) => {
    const found = findImage(index, ref);
    if (found === null) throw new UserError(`No such image: ${ref}`, EXIT_FAILURE);
    return Date.parse(found.record.created ?? found.record.added) || 0;
  };
  const before = (filters.get("before") ?? []).map(createdOf);
  const since = (filters.get("since") ?? []).map(createdOf);
  const references = (filters.get("reference") ?? []).map(globToRegExp);
  const labels = new Map<string, Record<string, string>>();
  const labelsOf = (id: string) => {
    if (!labels.has(id)) {
      const bytes = store.readBlob(id);
      labels.set(id, bytes === null ? {} : parseImageConfig(bytes).config.Labels ?? {});
    }
    return labels.get(id)!;
  };
  const time = (r: ImageRow) => Date.parse(r.created ?? "") || 0;
  return rows.filter((r) =>
    (dangling === undefined || (r.tag === "<none>") === dangling) &&
    (!filters.has("label") || labelsMatch(filters, labelsOf(r.id))) &&
    before.every((t) => time(r) < t) &&
    since.every((t) => time(r) > t) &&
    (references.length === 0 ||
      references.some((re) => re.test(r.repository) || re.test(`${r.repository}:${r.tag}`)))
  );
}

/** A `reference` filter's pattern (Docker's path.Match: `*` and `?` stop at "/"). */
function globToRegExp(pattern: string): RegExp {
  const body = pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replaceAll("*", "[^/]*")
    .replaceAll("?", "[^/]");
  return new RegExp(`^${body}$`);
}

/** The lines of `images` under `--format` (Docker's columns by default). */
export function formatImages(
  rows: readonly ImageRow[],
  format: string | undefined,
  trunc = true,
  now: Date = new Date(),
): string[] {
  return formatList(
    rows.map((r) => ({
      Containers: "N/A",
      CreatedAt: r.created ?? "",
      CreatedSince: r.created ? humanAgo(Date.parse(r.created), now.getTime()) : "N/A",
      Digest: r.digest ?? "<none>",
      ID: trunc ? shortId(r.id) : r.id,
      Repository: r.repository,
      SharedSize: "N/A",
      Size: formatSize(r.size),
      Tag: r.tag,
      UniqueSize: "N/A",
      VirtualSize: formatSize(r.size),
    })),
    format,
    IMAGE_FORMAT,
  );
}

/** Docker's columns: REPOSITORY TAG IMAGE ID CREATED SIZE. */
export function formatTable(rows: ImageRow[], now: Date = new Date()): string[] {
  return formatImages(rows, undefined, true, now);
}

/** Docker's `HumanDuration` + " ago": "About a minute ago", "3 days ago", "2 years ago". */
export function humanAgo(then: number, now: number): string {
  if (!Number.isFinite(then) || then <= 0) return "N/A";
  if (now - then < 1000) return "Less than a second ago";
  return `${humanDuration(now - then)} ago`;
}
