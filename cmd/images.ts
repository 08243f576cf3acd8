/** `images [-q] [REPOSITORY[:TAG]]`: list the images in the store. */

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
  const table = [
    ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"],
    ...rows.map((r) => [
      r.repository,
      r.tag,
      shortId(r.id),
      r.created ? humanAgo(Date.parse(r.created), now.getTime()) : "N/A",
      formatSize(r.size),
    ]),
  ];
  const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  return table.map((row) =>
    row.map((cell, i) => i === row.length - 1 ? cell : cell.padEnd(widths[i]! + 3)).join("")
  );
}

/** Docker's `HumanDuration` + " ago": "About a minute ago", "3 days ago", "2 years ago". */
export function humanAgo(then: number, now: number): string {
  if (!Number.isFinite(then) || then <= 0) return "N/A";
  const seconds = Math.max(0, (now - then) / 1000);
  const minutes = Math.round(seconds / 60);
  const hours = Math.round(seconds / 3600);
  let text: string;
  if (seconds < 1) return "Less than a second ago";
  else if (seconds < 60) {
    text = Math.floor(seconds) === 1 ? "1 second" : `${Math.floor(seconds)} seconds`;
  } else if (minutes === 1) text = "About a minute";
  else if (minutes < 60) text = `${minutes} minutes`;
  else if (hours === 1) text = "About an hour";
  else if (hours < 48) text = `${hours} hours`;
  else if (hours < 24 * 7 * 2) text = `${Math.floor(hours / 24)} days`;
  else if (hours < 24 * 30 * 2) text = `${Math.floor(hours / 24 / 7)} weeks`;
  else if (hours < 24 * 365 * 2) text = `${Math.floor(hours / 24 / 30)} months`;
  else text = `${Math.floor(hours / 24 / 365)} years`;
  return `${text} ago`;
}
