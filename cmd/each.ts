/** Runs an action on each container named, as Docker does: all are tried, errors reported. */
import { UserError } from "../base/errors.ts";

export async function eachContainer(
  refs: string[],
  action: (ref: string) => void | Promise<void>,
): Promise<void> {
  const errors: UserError[] = [];
  for (const ref of refs) {
    try {
      await action(ref);
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      errors.push(err);
    }
  }
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) {
    for (const e of errors.slice(0, -1)) console.error(`mini-docker: ${e.message}`);
    throw errors[errors.length - 1];
  }
}

/** `-t/--time` of stop and restart: whole seconds to wait before SIGKILL. */
export function stopSeconds(text: string): number {
  const seconds = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(seconds)) {
    throw new UserError(`Invalid timeout "${text}": expected a whole number of seconds`);
  }
  return seconds;
}
