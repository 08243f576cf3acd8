/**
 * Docker's `--filter NAME=VALUE` (repeatable): values of one name are alternatives (any may
 * match), different names must all match.
 */
import { EXIT_FAILURE, quote, UserError } from "../base/errors.ts";

/** Filter values by name. */
export type Filters = Map<string, string[]>;

/**
 * Reads `--filter` flags; a flag without "=" is a bad flag (125, as Docker's CLI), a name the
 * command does not filter on is refused as Docker's daemon refuses it (1).
 */
export function parseFilters(flags: readonly string[], accepted: readonly string[]): Filters {
  const filters: Filters = new Map();
  for (const flag of flags) {
    const eq = flag.indexOf("=");
    if (eq <= 0) {
      throw new UserError(`Invalid filter ${quote(flag)}: expected NAME=VALUE`);
    }
    const name = flag.slice(0, eq);
    if (!accepted.includes(name)) {
      throw new UserError(
        `Invalid filter ${quote(name)}: the filters here are ${accepted.join(", ")}`,
        EXIT_FAILURE,
      );
    }
    filters.set(name, [...(filters.get(name) ?? []), flag.slice(eq + 1)]);
  }
  return filters;
}

/** Whether `labels` has every label the `label` filters name (`KEY` or `KEY=VALUE`). */
export function labelsMatch(filters: Filters, labels: Record<string, string>): boolean {
  return (filters.get("label") ?? []).every((want) => {
    const eq = want.indexOf("=");
    if (eq < 0) return want in labels;
    return labels[want.slice(0, eq)] === want.slice(eq + 1);
  });
}

/** `--filter dangling=true|false` and the like: a boolean value, or a UserError. */
export function booleanFilter(filters: Filters, name: string): boolean | undefined {
  const values = filters.get(name);
  if (values === undefined) return undefined;
  const parsed = values.map((v) => {
    if (/^(true|1)$/i.test(v)) return true;
    if (/^(false|0)$/i.test(v)) return false;
    throw new UserError(`Invalid filter "${name}=${v}": expected true or false`, EXIT_FAILURE);
  });
  if (new Set(parsed).size > 1) {
    throw new UserError(`Invalid filter "${name}": true and false at once`, EXIT_FAILURE);
  }
  return parsed[0];
}
