/** `mini-docker rootfs [dir]`: prepares the root filesystem that `run` uses. */

import { Command } from "@commander-js/extra-typings";
import { UserError } from "../base/errors.ts";
import { prepareRootfs, type RootfsSource } from "../rootfs/prepare.ts";
import { defaultRootfs } from "../rootfs/check.ts";

const SOURCES: readonly RootfsSource[] = ["auto", "alpine", "busybox", "host"];

const EXAMPLES = `
Sources:
  auto     Alpine download, else static busybox, else host binaries (default)
  alpine   Alpine 3.18.4 minirootfs from dl-cdn.alpinelinux.org, SHA-256 checked
  busybox  the host's static busybox, one link per applet
  host     host programs (sh, ls, ps, ...) and the shared libraries they need

Examples:
  $ mini-docker rootfs                          # prepare rootfs/alpine
  $ mini-docker rootfs --source busybox /srv/bb # a busybox rootfs elsewhere
  $ mini-docker rootfs --force                  # rebuild rootfs/alpine
  $ MINI_DOCKER_ROOTFS=/srv/bb mini-docker run /bin/sh`;

/** The `rootfs` command: obtains Alpine or builds a rootfs from the host, and says which. */
export function rootfsCommand(): Command<
  [string],
  { source: string; force?: true | undefined }
> {
  return new Command("rootfs")
    .description("Prepare a root filesystem for containers")
    .argument("[dir]", "where to put it (env MINI_DOCKER_ROOTFS)", defaultRootfs())
    .option("--source <kind>", "auto|alpine|busybox|host", "auto")
    .option("-f, --force", "replace an existing rootfs")
    .addHelpText("after", EXAMPLES)
    .action(async (dir, opts) => {
      const source = SOURCES.find((s) => s === opts.source);
      if (source === undefined) {
        throw new UserError(
          `Unknown rootfs source "${opts.source}": expected auto, alpine, busybox or host`,
        );
      }
      const made = await prepareRootfs(dir, {
        source,
        force: opts.force,
        log: (line) => console.error(line),
      });
      console.log(
        made.source === "existing"
          ? `Rootfs ${dir} ${made.detail}`
          : `Prepared ${dir} from ${made.detail}`,
      );
    });
}
