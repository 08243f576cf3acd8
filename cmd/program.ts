/**
 * The command line: one commander program, one thin file per command. Commander's own errors
 * (unknown option, missing argument) become one line and exit code 125, as Docker's.
 */
import { Command, CommanderError } from "@commander-js/extra-typings";
import { EXIT_ENGINE, reportError } from "../base/errors.ts";
import { runCommand } from "./run.ts";
import { absolutePath } from "../base/paths.ts";
import { rootfsCommand } from "./rootfs.ts";
import { psCommand } from "./ps.ts";
import { logsCommand } from "./logs.ts";
import { killCommand, stopCommand } from "./stop.ts";
import { rmCommand } from "./rm.ts";
import { inspectCommand } from "./inspect.ts";
import { execCommand } from "./exec.ts";
import { pruneCommand } from "./prune.ts";
import { statsCommand } from "./stats.ts";
import { pullCommand } from "./pull.ts";
import { importCommand } from "./import.ts";
import { imagesCommand } from "./images.ts";
import { rmiCommand } from "./rmi.ts";
import { networkCommand } from "./network.ts";
import { portCommand } from "./port.ts";

const EXAMPLES = `
Examples:
  mini-docker rootfs                               prepare ./rootfs/alpine
  mini-docker run --hostname test /bin/ls -la      run a command in a container
  mini-docker run --memory 100M --cpus 0.5 /bin/sh a shell under limits
  mini-docker run --help                           the options of a command`;

/** Applies mini-docker's error handling to a command and its subcommands. */
function configure(cmd: Command<unknown[], Record<string, unknown>>): void {
  cmd.exitOverride();
  cmd.configureOutput({
    outputError: (text, write) => {
      const line = text.trim().replace(/^error: /, "");
      write(
        `mini-docker: ${line.charAt(0).toUpperCase()}${line.slice(1)} (see "${
          helpPath(cmd)
        } --help")\n`,
      );
    },
  });
  for (const sub of cmd.commands) configure(sub as Command<unknown[], Record<string, unknown>>);
}

function helpPath(cmd: Command<unknown[], Record<string, unknown>>): string {
  const names: string[] = [];
  for (let c: Command<unknown[], Record<string, unknown>> | null = cmd; c !== null; c = c.parent) {
    names.unshift(c.name());
  }
  return names.join(" ");
}

/** Builds the program. */
export function program(): Command<unknown[], Record<string, unknown>> {
  const prog = new Command("mini-docker")
    .description("A daemonless container tool: Linux namespaces, cgroups and pivot_root")
    .version("0.1.0", "-v, --version")
    .enablePositionalOptions()
    .option(
      "--root <dir>",
      "persistent data: containers, layers, images (default /var/lib/mini-docker)",
    )
    .option("--runroot <dir>", "runtime state: locks, sockets (default /run/mini-docker)")
    .hook("preAction", (cmd) => {
      // Everything below reads the paths from the environment (container/paths.ts), and so do
      // the stages and the supervisor that mini-docker starts.
      const { root, runroot } = cmd.opts() as { root?: string; runroot?: string };
      if (root !== undefined) Deno.env.set("MINI_DOCKER_ROOT", absolutePath(root));
      if (runroot !== undefined) Deno.env.set("MINI_DOCKER_RUNROOT", absolutePath(runroot));
    })
    .addHelpText("after", EXAMPLES)
    .addCommand(runCommand())
    .addCommand(psCommand())
    .addCommand(logsCommand())
    .addCommand(execCommand())
    .addCommand(stopCommand())
    .addCommand(killCommand())
    .addCommand(rmCommand())
    .addCommand(inspectCommand())
    .addCommand(pruneCommand())
    .addCommand(statsCommand())
    .addCommand(portCommand())
    .addCommand(networkCommand())
    .addCommand(pullCommand())
    .addCommand(importCommand())
    .addCommand(imagesCommand())
    .addCommand(rmiCommand())
    .addCommand(rootfsCommand()) as unknown as Command<unknown[], Record<string, unknown>>;
  configure(prog);
  return prog;
}

/** Runs the command line; returns the process exit code. */
export async function main(args: string[]): Promise<number> {
  const prog = program();
  try {
    if (args.length === 0) {
      prog.outputHelp();
      return 0;
    }
    await prog.parseAsync(args, { from: "user" });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.exitCode === 0 ? 0 : EXIT_ENGINE;
    }
    return reportError(err);
  }
}
