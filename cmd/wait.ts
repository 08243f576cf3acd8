/** `wait`: block until containers stop, then print their exit codes (Docker's). */
import { Command } from "@commander-js/extra-typings";
import { findContainer, readState } from "../container/state.ts";
import { EXIT_FAILURE, UserError } from "../base/errors.ts";
import { eachContainer } from "./each.ts";

/**
 * Waits until the container has exited (not waiting to restart) and returns its exit code. A
 * container removed meanwhile (--rm) before its end was seen is an error.
 */
export async function waitFor(id: string): Promise<number> {
  for (;;) {
    const state = readState(id);
    if (state === undefined) {
      throw new UserError(
        `No such container: ${id} (removed before its end was seen)`,
        EXIT_FAILURE,
      );
    }
    if (state.status === "exited") return state.exitCode ?? 255;
    await new Promise((r) => setTimeout(r, 20));
  }
}

export function waitCommand() {
  return new Command("wait")
    .description("Block until containers stop, then print their exit codes")
    .argument("<container...>", "container names or ids (unique prefixes work)")
    .addHelpText(
      "after",
      `
Examples:
  mini-docker wait job
  code=$(mini-docker wait job)`,
    )
    .action(async (refs) => {
      await eachContainer(refs, async (ref) => {
        console.log(await waitFor(findContainer(ref).id));
      });
    });
}
