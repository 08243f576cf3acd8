/** `export`: a container's filesystem as a tar archive, to stdout or a file. */
import { Command } from "@commander-js/extra-typings";
import { EXIT_FAILURE, UserError } from "../base/errors.ts";
import { findContainer } from "../container/state.ts";
import { exportContainer, writeFileAtomically } from "../container/copy.ts";

export function exportCommand() {
  return new Command("export")
    .description("Export a container's filesystem as a tar archive")
    .argument("<container>", "container name or id (unique prefixes work)")
    .option("-o, --output <file>", "write to a file, instead of STDOUT")
    .addHelpText(
      "after",
      `
The container's layers, without what is mounted on them (volumes, /proc, /sys, /dev), running or
not. A file is written under a temporary name and renamed when complete.

Examples:
  mini-docker export web > web.tar
  mini-docker export -o web.tar web`,
    )
    .action(async (ref, opts) => {
      const state = findContainer(ref);
      if (opts.output !== undefined) {
        await writeFileAtomically(opts.output, (fd) => exportContainer(state, fd));
        return;
      }
      if (Deno.stdout.isTerminal()) {
        throw new UserError(
          "Cowardly refusing to save to a terminal: use the -o flag or redirect",
          EXIT_FAILURE,
        );
      }
      await exportContainer(state, 1);
    });
}
