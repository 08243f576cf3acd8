/** `rmi [-f] IMAGE...`: untag and delete images. */

import { Command } from "@commander-js/extra-typings";
import { removeImages } from "../images/catalog.ts";

/** The `rmi` command; `out` receives the Untagged/Deleted lines (stdout by default). */
export function rmiCommand(out: (line: string) => void = (line) => console.log(line)) {
  return new Command("rmi")
    .description("Remove images (refused while a container uses one, unless forced)")
    .argument("<images...>", "image names or ids")
    .option("-f, --force", "remove even when in use or tagged in several repositories")
    .action(async (images, opts) => {
      const lines = await removeImages(images, { force: opts.force });
      for (const line of lines) out(line);
    });
}
