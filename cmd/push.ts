/** `push NAME[:TAG]`: send an image to the registry its name points at. */

import { Command } from "@commander-js/extra-typings";
import { pushImage } from "../images/push.ts";
import { createProgress, type Progress } from "../images/progress.ts";
import { parseReference, repositoryName } from "../images/reference.ts";
import { ImageStore } from "../images/store.ts";
import { EXIT_FAILURE, UserError } from "../base/errors.ts";

const quiet: Progress = { status() {}, layer() {}, bytes() {}, close() {} };

/** The `push` command; `out` receives the progress and Docker's last line (stdout by default). */
export function pushCommand(out: (line: string) => void = (line) => console.log(line)) {
  return new Command("push")
    .description("Upload an image to a registry")
    .argument("<name>", "NAME[:TAG] of a local image (default tag: latest)")
    .option("--insecure", "allow plain HTTP to a registry that is not on loopback")
    .option("-a, --all-tags", "push every tag of the repository (NAME without a tag)")
    .option("-q, --quiet", "no progress, only the digest line")
    .addHelpText(
      "after",
      `
Examples:
  mini-docker tag app:v2 127.0.0.1:5000/app:v2
  mini-docker push 127.0.0.1:5000/app:v2`,
    )
    .action(async (name, opts) => {
      // Ctrl-C cancels the upload under way (the registry drops its session) before exiting.
      const interrupt = new AbortController();
      const onSignal = () => interrupt.abort();
      Deno.addSignalListener("SIGINT", onSignal);
      Deno.addSignalListener("SIGTERM", onSignal);
      try {
        const names = opts.allTags ? repositoryTags(name) : [name];
        for (const one of names) {
          const result = await pushImage(one, {
            signal: interrupt.signal,
            insecure: opts.insecure,
            // Docker's push reports on stdout (bars on a terminal); errors alone go to stderr.
            progress: opts.quiet ? quiet : createProgress(out),
          });
          out(`${result.tag}: digest: ${result.digest} size: ${result.size}`);
        }
      } finally {
        Deno.removeSignalListener("SIGINT", onSignal);
        Deno.removeSignalListener("SIGTERM", onSignal);
      }
    });
}

/** `push -a NAME`: every local tag of NAME's repository, sorted. */
function repositoryTags(name: string): string[] {
  const ref = parseReference(name);
  if (ref.digest !== undefined || name.slice(name.lastIndexOf("/") + 1).includes(":")) {
    throw new UserError(`Tag can't be used with --all-tags/-a: give "${repositoryName(ref)}"`);
  }
  const repo = repositoryName(ref);
  const tags = Object.keys(new ImageStore().readIndex().tags)
    .filter((key) => key.slice(0, key.lastIndexOf(":")) === repo)
    .sort();
  if (tags.length === 0) {
    throw new UserError(`An image does not exist locally with the name: ${name}`, EXIT_FAILURE);
  }
  return tags;
}
