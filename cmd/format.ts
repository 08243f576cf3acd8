/**
 * How the commands print: Docker's table layout (its tabwriter: columns at least 10 wide, 3
 * spaces apart), its `--format` (a template, `table TEMPLATE`, or `json`), its human durations.
 */
import { Template, type Value } from "./template.ts";

/**
 * Lays out rows as Docker's tabwriter does: every column but the last padded to its widest cell
 * plus 3 spaces, and to at least `minWidth`.
 */
export function tabulate(rows: readonly (readonly string[])[], minWidth = 0): string[] {
  const width = (cell: string) => [...cell].length;
  const widths = rows[0]!.map((_, i) =>
    Math.max(minWidth, ...rows.map((row) => width(row[i] ?? "") + 3))
  );
  return rows.map((row) =>
    row.map((
      cell,
      i,
    ) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]! + cell.length - width(cell))))
      .join("").trimEnd()
  );
}

/** Docker's HumanDuration: "Less than a second", "1 second", "About a minute", "3 days". */
export function humanDuration(ms: number): string {
  const seconds = Math.max(0, ms / 1000);
  const minutes = Math.round(seconds / 60);
  const hours = Math.round(seconds / 3600);
  if (seconds < 1) return "Less than a second";
  if (seconds < 60) {
    return Math.floor(seconds) === 1 ? "1 second" : `${Math.floor(seconds)} seconds`;
  }
  if (minutes === 1) return "About a minute";
  if (minutes < 60) return `${minutes} minutes`;
  if (hours === 1) return "About an hour";
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.floor(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.floor(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24 / 30)} months`;
  return `${Math.floor(hours / 24 / 365)} years`;
}

/** Docker's tabwriter settings for every table: a column is its widest cell plus 3, at least 10. */
export const TABLE_MIN_WIDTH = 10;

/** What `--format` knows of a list's rows: its default table and its columns' names. */
export interface ListFormat {
  /** The default table template ("table {{.ID}}\t..."). */
  table: string;
  /** Header text of each field, as Docker names the columns. */
  headers: Record<string, string>;
}

/**
 * The lines of a list under Docker's `--format`: `table` (the default columns), `table
 * TEMPLATE` (a header row, then rows, laid out as a table), `json` (one JSON object per row),
 * or a template (one rendered row per line, as is). `\t` and `\n` in a template are a tab and
 * a newline. A template that does not parse is an error before any line.
 */
export function formatList(
  rows: readonly Value[],
  format: string | undefined,
  list: ListFormat,
): string[] {
  const text = format === undefined || format === "" || format === "table" ? list.table : format;
  if (text === "json") return rows.map((row) => JSON.stringify(row, jsonFields));
  const isTable = text.startsWith("table");
  const body = (isTable ? text.slice("table".length) : text).trim()
    .replaceAll("\\t", "\t").replaceAll("\\n", "\n");
  const template = Template.parse(body);
  const rendered = rows.map((row) => template.render(row));
  if (!isTable) return rendered.flatMap((r) => r.split("\n"));
  const header: Record<string, Value> = { ...list.headers };
  // Docker's header of a method column (`.Label "x"`) is the method's name.
  for (const [key, value] of Object.entries(rows[0] ?? {})) {
    if (typeof value === "function") header[key] = () => key.toUpperCase();
  }
  const cells = [template.render(header, { header: true }), ...rendered]
    .flatMap((line) => line.split("\n"))
    .map((line) => line.split("\t"));
  return tabulate(cells, TABLE_MIN_WIDTH);
}

/** JSON of a row: its methods (functions) are not data. */
function jsonFields(_key: string, value: unknown): unknown {
  return typeof value === "function" ? undefined : value;
}
