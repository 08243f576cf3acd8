/** `tag SOURCE_IMAGE TARGET_IMAGE[:TAG]`: another name for an image. */

import { Command } from "@commander-js/extra-typings";
import { tagImage } from "../images/catalog.ts";

export function tagCommand() {
  return new Command("tag")
    .description("Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE")
    .argument("<source>", "image name, digest reference or id")
    .argument("<target>", "NAME[:TAG] (default tag: latest)")
    .addHelpText(
      "after",
      `
Examples:
  mini-docker tag alpine:3.18 127.0.0.1:5000/alpine:3.18    before a push to that registry`,
    )
    .action(async (source, target) => {
      await tagImage(source, target);
    });
}
