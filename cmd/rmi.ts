/** `rmi [-f] IMAGE...`: untag and delete images. */

import { Command } from "@commander-js/extra-typings";
import { listStates } from "../container/state.ts";
import { removeImages } from "../images/catalog.ts";

/**
 * Short ids of the containers made from `imageId`, running or not: their writable layer sits on
 * the image's layers until they are removed, so Docker refuses too. The answer comes from here
 * because the image store sits below the container store and may not ask it.
 */
function containersUsing(imageId: string): string[] {
  return listStates().filter((s) => s.image === imageId).map((s) => s.id.slice(0, 12));
}

/** The `rmi` command; `out` receives the Untagged/Deleted lines (stdout by default). */
export function rmiCommand(out: (line: string) => void = (line) => console.log(line)) {
  return new Command("rmi")
    .description("Remove images (refused while a container uses one, unless forced)")
    .argument("<images...>", "image names or ids")
    .option("-f, --force", "remove even when in use or tagged in several repositories")
    .action(async (images, opts) => {
      const lines = await removeImages(images, containersUsing, { force: opts.force });
      for (const line of lines) out(line);
    });
}
