/** `mini-docker rm`: remove containers. */
import { Command } from "@commander-js/extra-typings";
import { findContainer } from "../container/state.ts";
import { removeContainer } from "../container/lifecycle.ts";
import { eachContainer } from "./each.ts";

export function rmCommand() {
  return new Command("rm")
    .description("Remove containers (their state, log and writable layer)")
    .argument("<container...>", "container names or ids (unique prefixes work)")
    .option("-f, --force", "kill and remove running containers")
    .option("-v, --volumes", "remove the container's anonymous volumes too (named ones stay)")
    .addHelpText(
      "after",
      `
Examples:
  mini-docker rm web
  mini-docker rm -f $(mini-docker ps -aq)`,
    )
    .action(async (refs, opts) => {
      await eachContainer(refs, async (ref) => {
        await removeContainer(findContainer(ref), opts.force === true, opts.volumes === true);
        console.log(ref);
      });
    });
}
