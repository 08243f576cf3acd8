/** `mini-docker exec`: run a command in a running container. */
import { Command } from "@commander-js/extra-typings";
import { findContainer } from "../container/state.ts";
import { execInContainer } from "../container/exec.ts";
import { ExitCode, UserError } from "../base/errors.ts";
import { parseEnvEntry } from "./units.ts";

const collect = (value: string, previous: string[]) => [...previous, value];

export function execCommand() {
  return new Command("exec")
    .description("Run a command in a running container")
    .usage("[options] CONTAINER COMMAND [ARG...]")
    .argument("<container>", "container name or id (unique prefixes work)")
    .argument("[command...]", "the command and its arguments")
    .passThroughOptions()
    .option("-i, --interactive", "keep stdin open")
    .option("-t, --tty", "allocate a pseudo-terminal")
    .option(
      "-e, --env <KEY=VALUE>",
      "set an environment variable (repeatable)",
      collect,
      [] as string[],
    )
    .option("-w, --workdir <dir>", "working directory inside the container")
    .option("-u, --user <user>", "user name or uid[:gid] inside the container")
    .option("--privileged", "every capability and no seccomp filter for this process")
    .addHelpText(
      "after",
      `
Examples:
  mini-docker exec web hostname
  mini-docker exec -it web /bin/sh
  mini-docker exec -u nobody -w /tmp -e A=1 web /bin/sh -c 'id; pwd; echo $A'`,
    )
    .action(async (ref, command, opts) => {
      if (Deno.uid() !== 0) throw new UserError("mini-docker exec needs root: run it with sudo");
      if (command.length === 0) {
        throw new UserError(
          'No command given: "mini-docker exec [options] CONTAINER COMMAND [ARG...]"',
        );
      }
      if (opts.workdir !== undefined && !opts.workdir.startsWith("/")) {
        throw new UserError(
          `Invalid working directory "${opts.workdir}": it must be an absolute path`,
        );
      }
      if (opts.tty && opts.interactive && !Deno.stdin.isTerminal()) {
        throw new UserError("The input device is not a TTY: drop -t, or run from a terminal");
      }
      const state = findContainer(ref);
      const env = opts.env.map((e) => parseEnvEntry(e, (k) => Deno.env.get(k))).filter((e) =>
        e !== undefined
      );
      const code = await execInContainer(state, {
        args: command,
        env,
        cwd: opts.workdir,
        // Names are looked up inside the container, by the thread that enters it.
        user: opts.user,
        privileged: opts.privileged === true,
        interactive: opts.interactive === true,
        tty: opts.tty === true,
      });
      throw new ExitCode(code);
    });
}
