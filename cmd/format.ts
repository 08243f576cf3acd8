/** How the commands print: Docker's table layout and its human durations. */

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
