/** `rename`: a container's new name (Docker's rules), and its name in its networks' DNS. */
import { Command } from "@commander-js/extra-typings";
import { renameContainer } from "../container/lifecycle.ts";

export function renameCommand() {
  return new Command("rename")
    .description("Rename a container")
    .argument("<container>", "container name or id (unique prefixes work)")
    .argument("<new-name>", "its new name")
    .addHelpText(
      "after",
      `
Examples:
  mini-docker rename calm_noether web`,
    )
    .action(async (ref, name) => {
      await renameContainer(ref, name);
    });
}
