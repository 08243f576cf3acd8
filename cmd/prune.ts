/** `mini-docker prune`: remove stopped containers and what killed mini-docker runs left. */
import { Command } from "@commander-js/extra-typings";
import { listStates } from "../container/state.ts";
import { cleanupStale, removeContainer } from "../container/lifecycle.ts";

export function pruneCommand() {
  return new Command("prune")
    .description("Remove all stopped containers, and leftovers of interrupted runs")
    .addHelpText(
      "after",
      `
Leftovers are the cgroups, state and layers of containers whose mini-docker was killed
(SIGKILL) before it could clean up; they are removed once their processes are gone.

Examples:
  mini-docker prune`,
    )
    .action(async () => {
      const deleted = await cleanupStale();
      for (const s of listStates()) {
        if (s.status !== "exited") continue;
        await removeContainer(s, false);
        deleted.push(s.id);
      }
      console.log("Deleted Containers:");
      for (const id of deleted) console.log(id);
    });
}
