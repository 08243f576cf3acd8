/** `push NAME[:TAG]`: send an image to the registry its name points at. */

import { Command } from "@commander-js/extra-typings";
import { pushImage } from "../images/push.ts";
import { createProgress, type Progress } from "../images/progress.ts";

const quiet: Progress = { status() {}, layer() {}, bytes() {}, close() {} };

/** The `push` command; `out` receives the progress and Docker's last line (stdout by default). */
export function pushCommand(out: (line: string) => void = (line) => console.log(line)) {
  return new Command("push")
    .description("Upload an image to a registry")
    .argument("<name>", "NAME[:TAG] of a local image (default tag: latest)")
    .option("--insecure", "allow plain HTTP to a registry that is not on loopback")
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
        const result = await pushImage(name, {
          signal: interrupt.signal,
          insecure: opts.insecure,
          // Docker's push reports on stdout (bars on a terminal); errors alone go to stderr.
          progress: opts.quiet ? quiet : createProgress(out),
        });
        out(`${result.tag}: digest: ${result.digest} size: ${result.size}`);
      } finally {
        Deno.removeSignalListener("SIGINT", onSignal);
        Deno.removeSignalListener("SIGTERM", onSignal);
      }
    });
}
