/** `import TARBALL [NAME[:TAG]]`: a root filesystem tarball becomes an image. */

import { Command } from "@commander-js/extra-typings";
import { importTarball } from "../images/import.ts";

/** The `import` command; `out` receives the new image id (stdout by default). */
export function importCommand(out: (line: string) => void = (line) => console.log(line)) {
  return new Command("import")
    .description("Create an image from a root filesystem tarball (gzip or plain tar)")
    .argument("<tarball>", "path of the tarball, or - for standard input")
    .argument("[name]", "NAME[:TAG] to give the image")
    .action(async (tarball, name) => {
      const { record } = await importTarball(tarball, name);
      out(record.id);
    });
}
