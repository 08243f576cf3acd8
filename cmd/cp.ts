/** `cp`: files and directories between a container and the host, or a tar stream (`-`). */
import { Command } from "@commander-js/extra-typings";
import { EXIT_FAILURE, UserError } from "../base/errors.ts";
import { findContainer } from "../container/state.ts";
import { copyFromContainer, copyToContainer } from "../container/copy.ts";
import { formatSize } from "../images/progress.ts";

/**
 * Docker's split of a cp argument: `CONTAINER:PATH`, unless the argument is an absolute path or
 * starts with "." (a local `./file:name.txt`), or has no colon.
 */
export function splitCopyArg(arg: string): { container?: string; path: string } {
  if (arg.startsWith("/")) return { path: arg };
  const colon = arg.indexOf(":");
  if (colon < 0 || arg.startsWith(".")) return { path: arg };
  return { container: arg.slice(0, colon), path: arg.slice(colon + 1) };
}

/** Docker's size for "Successfully copied": decimal units, three significant digits. */
export function copiedSize(bytes: number): string {
  return formatSize(bytes);
}

export function cpCommand() {
  return new Command("cp")
    .description("Copy files/folders between a container and the local filesystem")
    .usage(
      "[options] CONTAINER:SRC_PATH DEST_PATH|-\n       mini-docker cp [options] SRC_PATH|- CONTAINER:DEST_PATH",
    )
    .argument("<source>", "CONTAINER:SRC_PATH, a local SRC_PATH, or - (a tar stream on stdin)")
    .argument(
      "<destination>",
      "CONTAINER:DEST_PATH, a local DEST_PATH, or - (a tar stream on stdout)",
    )
    .option("-a, --archive", "archive mode (copy all uid/gid information)")
    .option("-L, --follow-link", "always follow the symbolic link in SRC_PATH")
    .option("-q, --quiet", "suppress the summary (also without a terminal on stderr)")
    .addHelpText(
      "after",
      `
SRC_PATH ending in "/." copies a directory's contents; a DEST_PATH that is a directory receives
SRC under its own name; one that does not exist is created (its parent must exist). Container
paths are relative to its root, and resolve inside it: a symlink of the container never leads
out of it. Running and stopped containers alike.

Examples:
  mini-docker cp web:/etc/nginx/nginx.conf ./nginx.conf
  mini-docker cp ./site/. web:/usr/share/nginx/html
  mini-docker cp -a web:/var/lib/data /backup/data
  mini-docker cp web:/var/log - | tar -t
  tar -c -C conf . | mini-docker cp - web:/etc/app`,
    )
    .action(async (srcArg, destArg, opts) => {
      const src = splitCopyArg(srcArg);
      const dest = splitCopyArg(destArg);
      if (src.container !== undefined && dest.container !== undefined) {
        throw new UserError("Copying between containers is not supported", EXIT_FAILURE);
      }
      if (src.container === undefined && dest.container === undefined) {
        throw new UserError(
          'Must specify at least one container source: "CONTAINER:PATH"',
          EXIT_FAILURE,
        );
      }
      if (src.path === "") throw new UserError("Source can not be empty", EXIT_FAILURE);
      if (dest.path === "") throw new UserError("Destination can not be empty", EXIT_FAILURE);
      const options = { archive: opts.archive === true, followLink: opts.followLink === true };
      let result;
      let shown: string;
      if (src.container !== undefined) {
        const state = findContainer(src.container);
        result = await copyFromContainer(state, src.container, src.path, dest.path, options);
        shown = dest.path;
      } else {
        const state = findContainer(dest.container!);
        result = await copyToContainer(src.path, state, dest.container!, dest.path, options);
        shown = destArg;
      }
      // Docker's summary, on a terminal only.
      const stream = src.path === "-" || dest.path === "-";
      if (!opts.quiet && !stream && Deno.stderr.isTerminal()) {
        console.error(`Successfully copied ${copiedSize(result.bytes)} to ${shown}`);
      }
    });
}
