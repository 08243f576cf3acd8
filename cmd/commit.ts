/**
 * `commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]`: a new image from a container's changes (its
 * writable layer), over the container's image; a container made from a root filesystem
 * directory instead gets that directory as the image's first layer. A running container is
 * paused (cgroup freezer) while its layer is read, unless `--pause=false`.
 */

import { Command } from "@commander-js/extra-typings";
import { EXIT_FAILURE, UserError } from "../base/errors.ts";
import type { ContainerSpec } from "../base/spec.ts";
import { containerConfig, findContainer, readState, stateDir } from "../container/state.ts";
import { isRunning, pauseContainer, unpauseContainer } from "../container/lifecycle.ts";
import { commitImage } from "../images/commit.ts";

const collect = (value: string, previous: string[]) => [...previous, value];

/** Docker's boolean flag values: `-p=false`, `--pause false`, `--pause`. */
function parseBool(value: string): boolean {
  const v = value.replace(/^=/, "").toLowerCase();
  if (["true", "1", "t"].includes(v)) return true;
  if (["false", "0", "f"].includes(v)) return false;
  throw new UserError(`Invalid boolean "${value}" for --pause: use true or false`);
}

/** The `commit` command; `out` receives the new image id (stdout by default). */
export function commitCommand(out: (line: string) => void = (line) => console.log(line)) {
  return new Command("commit")
    .description("Create a new image from a container's changes")
    .argument("<container>", "container name or id")
    .argument("[repository]", "REPOSITORY[:TAG] for the new image")
    .option("-a, --author <author>", 'author (e.g. "Jane <jane@example.org>")')
    .option("-c, --change <instruction>", "Dockerfile instruction to apply (repeatable)", collect, [
      ...[] as string[],
    ])
    .option("-m, --message <message>", "commit message")
    .option("-p, --pause [bool]", "pause the container during the commit (default true)", parseBool)
    .addHelpText(
      "after",
      `
--change takes CMD, ENTRYPOINT (JSON or shell form), ENV, WORKDIR, USER, EXPOSE, LABEL, VOLUME
and STOPSIGNAL, as in a Dockerfile.

Examples:
  mini-docker commit web app:v2
  mini-docker commit -c 'CMD ["httpd", "-f"]' -c 'ENV MODE=prod' -m "configured" web app:v2`,
    )
    .action(async (ref, repository, opts) => {
      const state = findContainer(ref);
      let spec: ContainerSpec;
      try {
        spec = JSON.parse(Deno.readTextFileSync(`${stateDir(state.id)}/config.json`));
      } catch (err) {
        throw new UserError(
          `Cannot commit container ${state.name}: its config cannot be read (${
            (err as Error).message
          })`,
          EXIT_FAILURE,
        );
      }
      const upper = spec.rootLayers?.upper;
      if (upper === undefined) {
        throw new UserError(
          `Cannot commit container ${state.name}: it has no writable layer (its root was read-only: overlayfs was unavailable)`,
          EXIT_FAILURE,
        );
      }
      const cfg = containerConfig(state);
      const config: Record<string, unknown> = {
        Cmd: cfg.cmd,
        Entrypoint: cfg.entrypoint,
        // The environment as the container was given it, without what the runtime adds.
        Env: spec.process.env.filter((e) =>
          !e.startsWith("HOSTNAME=") && !(cfg.tty && e === "TERM=xterm")
        ),
        Labels: Object.keys(cfg.labels).length > 0 ? cfg.labels : null,
      };
      if (cfg.user !== "") config.User = cfg.user;
      if (spec.process.cwd !== "/") config.WorkingDir = spec.process.cwd;
      const pause = opts.pause !== false && isRunning(state) && !state.paused;
      if (pause) await pauseContainer(state);
      try {
        const record = await commitImage({
          containerId: state.id.slice(0, 12),
          upper,
          parentId: state.image,
          baseDir: state.image === undefined
            ? state.rootfs ?? spec.rootLayers?.lower[0]
            : undefined,
          mountPoints: (spec.mounts ?? []).map((m) => m.destination),
          config,
        }, {
          changes: opts.change,
          message: opts.message,
          author: opts.author,
          name: repository,
        });
        out(record.id);
      } catch (err) {
        if (err instanceof UserError) throw new UserError(err.message, EXIT_FAILURE);
        throw err;
      } finally {
        if (pause) {
          const now = readState(state.id);
          if (now !== undefined && now.paused) await unpauseContainer(now);
        }
      }
    });
}
