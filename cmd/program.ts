/**
 * The command line: one commander program, one thin file per command, and Docker's management
 * groups (`container`, `image`, `system`) over the same commands. Commander's own errors
 * (unknown option, missing argument, an unknown command and its suggestion) become one line and
 * exit code 125, as Docker's.
 */
import { Command, CommanderError } from "@commander-js/extra-typings";
import { EXIT_ENGINE, EXIT_FAILURE, reportError, UserError } from "../base/errors.ts";
import { createCommand, runCommand } from "./run.ts";
import { absolutePath } from "../base/paths.ts";
import { VERSION } from "../base/version.ts";
import { rootfsCommand } from "./rootfs.ts";
import { psCommand } from "./ps.ts";
import { logsCommand } from "./logs.ts";
import { killCommand, stopCommand } from "./stop.ts";
import { rmCommand } from "./rm.ts";
import { inspectCommand } from "./inspect.ts";
import { execCommand } from "./exec.ts";
import {
  containerPruneCommand,
  imagePruneCommand,
  pruneCommand,
  systemDfCommand,
  systemPruneCommand,
} from "./prune.ts";
import { statsCommand } from "./stats.ts";
import { pullCommand } from "./pull.ts";
import { importCommand } from "./import.ts";
import { imagesCommand } from "./images.ts";
import { rmiCommand } from "./rmi.ts";
import { networkCommand } from "./network.ts";
import { portCommand } from "./port.ts";
import { attachCommand, restartCommand, startCommand } from "./start.ts";
import { pauseCommand, unpauseCommand } from "./pause.ts";
import { waitCommand } from "./wait.ts";
import { topCommand } from "./top.ts";
import { renameCommand } from "./rename.ts";
import { infoCommand, versionCommand } from "./version.ts";
// Images that go back out (issue 14): commit, tag, push, login, save/load, history.
import { commitCommand } from "./commit.ts";
import { tagCommand } from "./tag.ts";
import { pushCommand } from "./push.ts";
import { loginCommand, logoutCommand } from "./login.ts";
import { loadCommand, saveCommand } from "./save.ts";
import { historyCommand } from "./history.ts";
// Volumes (issue 14).
import { volumeCommand } from "./volume.ts";
// Files in and out of containers (issue 14).
import { cpCommand } from "./cp.ts";
import { exportCommand } from "./export.ts";
import { diffCommand } from "./diff.ts";

type AnyCommand = Command<unknown[], Record<string, unknown>>;

const EXAMPLES = `
Examples:
  mini-docker rootfs                               prepare ./rootfs/alpine
  mini-docker run --hostname test /bin/ls -la      run a command in a container
  mini-docker run --memory 100M --cpus 0.5 /bin/sh a shell under limits
  mini-docker run alpine:3.18 cat /etc/os-release  run an image (pulled if missing)
  mini-docker run --help                           the options of a command`;

/** Commands that work without root: they read nothing of root's. */
const WITHOUT_ROOT = new Set([
  "mini-docker version",
  "mini-docker run", // says itself that it needs root, with run's exit code (125)
  "mini-docker create",
  "mini-docker rootfs",
]);

/** Applies mini-docker's error handling to a command and its subcommands. */
function configure(cmd: AnyCommand): void {
  cmd.exitOverride();
  cmd.configureOutput({
    outputError: (text, write) => {
      // One line: commander's suggestion ("(Did you mean run?)") is on a line of its own.
      const line = text.trim().replace(/^error: /, "").replace(/\s*\n\s*/g, " ");
      write(
        `mini-docker: ${line.charAt(0).toUpperCase()}${line.slice(1)} (see "${
          helpPath(cmd)
        } --help")\n`,
      );
    },
  });
  for (const sub of cmd.commands) configure(sub as AnyCommand);
}

function helpPath(cmd: AnyCommand): string {
  const names: string[] = [];
  for (let c: AnyCommand | null = cmd; c !== null; c = c.parent) {
    names.unshift(c.name());
  }
  return names.join(" ");
}

/** A command made by `factory`, under another name (the `container ls` of `ps`). */
function renamed(factory: () => unknown, name: string, ...aliases: string[]): AnyCommand {
  const cmd = factory() as AnyCommand;
  cmd.name(name);
  for (const alias of aliases) cmd.alias(alias);
  return cmd;
}

/** Docker's `container` group: the container commands under their management names. */
function containerCommand(): AnyCommand {
  const group = new Command("container").description("Manage containers")
    .enablePositionalOptions() as AnyCommand;
  for (
    const sub of [
      renamed(() => psCommand("ls"), "ls", "list", "ps"),
      createCommand(),
      runCommand(),
      startCommand(),
      stopCommand(),
      restartCommand(),
      killCommand(),
      renamed(rmCommand, "rm", "remove"),
      inspectCommand(),
      logsCommand(),
      execCommand(),
      attachCommand(),
      pauseCommand(),
      unpauseCommand(),
      waitCommand(),
      topCommand(),
      renameCommand(),
      portCommand(),
      statsCommand(),
      containerPruneCommand(),
      ...imageOutCommands("container"),
      // Files in and out of containers.
      cpCommand(),
      exportCommand(),
      diffCommand(),
    ]
  ) group.addCommand(sub as AnyCommand);
  return group;
}

/**
 * The commands that make images and send them out: top level, and under `image` (but `commit`,
 * which Docker files under `container`).
 */
function imageOutCommands(group?: "image" | "container"): AnyCommand[] {
  if (group === "container") return [commitCommand() as unknown as AnyCommand];
  return [
    ...(group === "image" ? [] : [commitCommand()]),
    tagCommand(),
    pushCommand(),
    saveCommand(),
    loadCommand(),
    historyCommand(),
  ] as unknown as AnyCommand[];
}

/** Docker's `image` group. */
function imageCommand(): AnyCommand {
  const group = new Command("image").description("Manage images")
    .enablePositionalOptions() as AnyCommand;
  for (
    const sub of [
      renamed(() => imagesCommand(undefined, "ls"), "ls", "list"),
      pullCommand(),
      importCommand(),
      renamed(rmiCommand, "rm", "remove"),
      imagePruneCommand(),
      ...imageOutCommands("image"),
    ]
  ) group.addCommand(sub as AnyCommand);
  return group;
}

/** Docker's `system` group. */
function systemCommand(): AnyCommand {
  const group = new Command("system").description("Manage mini-docker")
    .enablePositionalOptions() as AnyCommand;
  for (const sub of [systemDfCommand(), systemPruneCommand(), infoCommand()]) {
    group.addCommand(sub as AnyCommand);
  }
  return group;
}

/** Builds the program. */
export function program(): AnyCommand {
  const prog = new Command("mini-docker")
    .description("A daemonless container tool: Linux namespaces, cgroups and pivot_root")
    .version(VERSION, "-v, --version")
    .enablePositionalOptions()
    .option(
      "--root <dir>",
      "persistent data: containers, layers, images (default /var/lib/mini-docker)",
    )
    .option("--runroot <dir>", "runtime state: locks, sockets (default /run/mini-docker)")
    .hook("preAction", (cmd, action) => {
      // Everything below reads the paths from the environment (base/paths.ts), and so do the
      // supervisor and the programs that mini-docker starts.
      const { root, runroot } = cmd.opts() as { root?: string; runroot?: string };
      if (root !== undefined) Deno.env.set("MINI_DOCKER_ROOT", absolutePath(root));
      if (runroot !== undefined) Deno.env.set("MINI_DOCKER_RUNROOT", absolutePath(runroot));
      const path = helpPath(action as AnyCommand);
      if (Deno.uid() !== 0 && !WITHOUT_ROOT.has(path)) {
        throw new UserError(
          `${path} needs root (containers, images and their state are root's): run it with sudo`,
          EXIT_FAILURE,
        );
      }
    })
    .addHelpText("after", EXAMPLES) as unknown as AnyCommand;
  for (
    const sub of [
      runCommand(),
      createCommand(),
      startCommand(),
      restartCommand(),
      psCommand(),
      logsCommand(),
      execCommand(),
      attachCommand(),
      stopCommand(),
      killCommand(),
      pauseCommand(),
      unpauseCommand(),
      waitCommand(),
      topCommand(),
      renameCommand(),
      rmCommand(),
      inspectCommand(),
      pruneCommand(),
      statsCommand(),
      portCommand(),
      networkCommand(),
      containerCommand(),
      imageCommand(),
      systemCommand(),
      pullCommand(),
      importCommand(),
      imagesCommand(),
      rmiCommand(),
      ...imageOutCommands(),
      loginCommand(),
      logoutCommand(),
      rootfsCommand(),
      versionCommand(),
      infoCommand(),
      // Volumes (issue 14).
      volumeCommand(),
      // Files in and out of containers.
      cpCommand(),
      exportCommand(),
      diffCommand(),
    ]
  ) prog.addCommand(sub as AnyCommand);
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
