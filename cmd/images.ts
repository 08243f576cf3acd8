/** `images [-q] [REPOSITORY[:TAG]]`: list the images in the store. */

import { humanDuration, tabulate } from "./format.ts";
import { Command } from "@commander-js/extra-typings";
import { type ImageRow, listImages } from "../images/catalog.ts";
import { formatSize } from "../images/progress.ts";
import { familiarName, parseReference, repositoryName } from "../images/reference.ts";
import { shortId } from "../images/digest.ts";

/** The `images` command; `out` receives the table lines (stdout by default). */
export function imagesCommand(out: (line: string) => void = (line) => console.log(line)) {
  return new Command("images")
    .description("List images")
    .argument("[repository]", "only this REPOSITORY[:TAG]")
    .option("-q, --quiet", "only show image ids")
    .action((repository, opts) => {
      let rows = listImages();
      if (repository !== undefined) {
        const ref = parseReference(repository);
        const repo = familiarName(repositoryName(ref));
        const explicitTag = repository.slice(repository.lastIndexOf("/") + 1).includes(":");
        const tag = explicitTag ? ref.tag : undefined;
        rows = rows.filter((r) => r.repository === repo && (tag === undefined || r.tag === tag));
      }
      if (opts.quiet) {
        for (const row of rows) out(shortId(row.id));
        return;
      }
      for (const line of formatTable(rows)) out(line);
    });
}

/** Docker's columns: REPOSITORY TAG IMAGE ID CREATED SIZE. */
export function formatTable(rows: ImageRow[], now: Date = new Date()): string[] {
  return tabulate([
    ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"],
    ...rows.map((r) => [
      r.repository,
      r.tag,
      shortId(r.id),
      r.created ? humanAgo(Date.parse(r.created), now.getTime()) : "N/A",
      formatSize(r.size),
    ]),
  ]);
}

/** Docker's `HumanDuration` + " ago": "About a minute ago", "3 days ago", "2 years ago". */
export function humanAgo(then: number, now: number): string {
  if (!Number.isFinite(then) || then <= 0) return "N/A";
  if (now - then < 1000) return "Less than a second ago";
  return `${humanDuration(now - then)} ago`;
}
