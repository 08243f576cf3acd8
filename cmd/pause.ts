/** `pause` and `unpause`: every process of a container frozen, or thawed (cgroup freezer). */
import { Command } from "@commander-js/extra-typings";
import { findContainer } from "../container/state.ts";
import { pauseContainer, unpauseContainer } from "../container/lifecycle.ts";
import { eachContainer } from "./each.ts";

export function pauseCommand() {
  return new Command("pause")
    .description("Pause every process of containers (cgroup freezer)")
    .argument("<container...>", "container names or ids (unique prefixes work)")
    .addHelpText(
      "after",
      `
A paused container uses no CPU; its processes keep their memory and do not notice, and signals
wait until "unpause" (but SIGKILL: "stop", "kill" and "rm -f" work on a paused container).

Examples:
  mini-docker pause web
  mini-docker unpause web`,
    )
    .action(async (refs) => {
      await eachContainer(refs, async (ref) => {
        await pauseContainer(findContainer(ref));
        console.log(ref);
      });
    });
}

export function unpauseCommand() {
  return new Command("unpause")
    .description("Unpause containers")
    .argument("<container...>", "container names or ids (unique prefixes work)")
    .action(async (refs) => {
      await eachContainer(refs, async (ref) => {
        await unpauseContainer(findContainer(ref));
        console.log(ref);
      });
    });
}
