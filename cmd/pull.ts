/** `pull NAME[:TAG|@DIGEST]`: download an image into the store. */

import { Command } from "@commander-js/extra-typings";
import { pullImage } from "../images/pull.ts";
import { createProgress, type Progress } from "../images/progress.ts";
import { EXIT_ENGINE, EXIT_FAILURE, UserError } from "../base/errors.ts";

const quiet: Progress = { status() {}, layer() {}, bytes() {}, close() {} };

/** The `pull` command; `out` receives the pulled reference (stdout by default). */
export function pullCommand(out: (line: string) => void = (line) => console.log(line)) {
  return new Command("pull")
    .description("Download an image from a registry")
    .argument("<name>", "image reference: NAME[:TAG|@DIGEST] (docker.io/library by default)")
    .option("--insecure", "allow plain HTTP to a registry that is not on loopback")
    .option("--platform <os/arch>", "platform to pick from a multi-platform image")
    .option("-q, --quiet", "print only the image reference")
    .action(async (name, opts) => {
      try {
        const result = await pullImage(name, {
          insecure: opts.insecure,
          platform: opts.platform,
          progress: opts.quiet ? quiet : createProgress(),
        });
        out(result.ref);
      } catch (err) {
        // Docker's pull fails with 1 (125 is run's own code, which run keeps for a pull).
        if (err instanceof UserError && err.exitCode === EXIT_ENGINE) {
          throw new UserError(err.message, EXIT_FAILURE);
        }
        throw err;
      }
    });
}
