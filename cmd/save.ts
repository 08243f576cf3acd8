/**
 * `save [-o FILE] [--format docker-archive|oci-archive] IMAGE...` and `load [-i FILE] [-q]`:
 * images as one tar archive, in the formats Docker, Podman and skopeo exchange.
 */

import { Command } from "@commander-js/extra-typings";
import { basename, dirname, join } from "node:path";
import { EXIT_FAILURE, UserError } from "../base/errors.ts";
import { type ArchiveFormat, loadImages, saveImages } from "../images/archive.ts";
import { createProgress } from "../images/progress.ts";

const FORMATS: ArchiveFormat[] = ["docker-archive", "oci-archive"];

export function saveCommand() {
  return new Command("save")
    .description("Save images to a tar archive (standard output by default)")
    .argument("<images...>", "image names or ids")
    .option("-o, --output <file>", "write to this file instead of standard output")
    .option("--format <format>", "docker-archive (default, Docker's) or oci-archive (Podman's)")
    .addHelpText(
      "after",
      `
Examples:
  mini-docker save -o app.tar app:v2 app:v1
  mini-docker save --format oci-archive app:v2 | gzip > app-oci.tar.gz`,
    )
    .action(async (images, opts) => {
      const format = (opts.format ?? "docker-archive") as ArchiveFormat;
      if (!FORMATS.includes(format)) {
        throw new UserError(`Invalid --format "${opts.format}": use ${FORMATS.join(" or ")}`);
      }
      if (opts.output === undefined) {
        if (Deno.stdout.isTerminal()) {
          throw new UserError(
            "Cowardly refusing to save to a terminal: use the -o flag or redirect",
            EXIT_FAILURE,
          );
        }
        await saveImages(images, Deno.stdout.writable, { format });
        return;
      }
      // Written beside the target and renamed over it when complete: never half an archive.
      const target = opts.output;
      checkOutputPath(target);
      const tmp = join(dirname(target), `.${basename(target)}.${Deno.pid}.tmp`);
      const removeTmp = () => {
        try {
          Deno.removeSync(tmp);
        } catch { /* never created, or renamed */ }
      };
      // Ctrl-C (or a kill) leaves no half archive beside the target: 130 and 143, the shell's.
      const handlers = (["SIGINT", "SIGTERM"] as const).map((signal) => {
        const handler = () => {
          removeTmp();
          Deno.exit(signal === "SIGINT" ? 130 : 143);
        };
        Deno.addSignalListener(signal, handler);
        return [signal, handler] as const;
      });
      try {
        // Made once the handlers are in place: no moment when a signal would leave it.
        let f: Deno.FsFile;
        try {
          f = await Deno.open(tmp, { write: true, createNew: true, mode: 0o644 });
        } catch (err) {
          throw new UserError(`Cannot write "${target}": ${(err as Error).message}`, EXIT_FAILURE);
        }
        await saveImages(images, f.writable, { format });
        try {
          Deno.renameSync(tmp, target);
        } catch (err) {
          throw new UserError(`Cannot write "${target}": ${(err as Error).message}`, EXIT_FAILURE);
        }
      } catch (err) {
        removeTmp(); // ours by its name (this process's id), whatever failed
        throw err;
      } finally {
        for (const [signal, handler] of handlers) Deno.removeSignalListener(signal, handler);
      }
    });
}

/**
 * What `-o` may name, as Docker's CLI checks it: a new file or a regular one (a symlink is
 * replaced, never written through). A directory, device, fifo or socket is refused before
 * anything is written: the archive is renamed over the target, which must never replace the
 * host's /dev/null.
 */
function checkOutputPath(target: string): void {
  let st: Deno.FileInfo;
  try {
    st = Deno.statSync(target);
  } catch {
    return; // new (or a dangling symlink, replaced)
  }
  if (st.isDirectory) {
    throw new UserError(
      `Cannot write "${target}": it is a directory: name a file in it`,
      EXIT_FAILURE,
    );
  }
  if (!st.isFile) {
    throw new UserError(
      `Cannot write "${target}": it is not a regular file (a device, fifo or socket): redirect standard output to it instead`,
      EXIT_FAILURE,
    );
  }
}

export function loadCommand(out: (line: string) => void = (line) => console.log(line)) {
  return new Command("load")
    .description("Load images from a tar archive (docker-archive or OCI), gzip or zstd or plain")
    .option("-i, --input <file>", "read from this file instead of standard input")
    .option("-q, --quiet", "no per-layer progress, only the Loaded lines")
    .addHelpText(
      "after",
      `
Examples:
  mini-docker load -i app.tar
  podman save --format oci-archive alpine | mini-docker load`,
    )
    .action(async (opts) => {
      const quiet = { status() {}, layer() {}, bytes() {}, close() {} };
      const progress = opts.quiet ? quiet : createProgress();
      try {
        const lines = await loadImages(opts.input ?? "-", { progress });
        for (const line of lines) out(line);
      } finally {
        progress.close();
      }
    });
}
