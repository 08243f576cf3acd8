/** `diff`: what a container changed in its filesystem, as Docker's A/C/D lines. */
import { Command } from "@commander-js/extra-typings";
import { findContainer } from "../container/state.ts";
import { containerChanges } from "../container/copy.ts";

export function diffCommand() {
  return new Command("diff")
    .description("Inspect changes to files or directories on a container's filesystem")
    .argument("<container>", "container name or id (unique prefixes work)")
    .addHelpText(
      "after",
      `
A: added, C: changed, D: deleted, against its image (or root filesystem); what mini-docker put
there for the container's mounts (/etc/hostname, /etc/hosts, /etc/resolv.conf, mount points) is
not listed, as Docker's init layer is not.

Examples:
  mini-docker diff web`,
    )
    .action(async (ref) => {
      const lines = await containerChanges(findContainer(ref));
      if (lines.length > 0) console.log(lines.join("\n"));
    });
}
