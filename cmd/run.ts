/**
 * `mini-docker run [OPTIONS] IMAGE [COMMAND] [ARG...]` and `create`: the commander commands,
 * built from the option table in run_args.ts; the work is runAction's and buildRun's
 * (run_action.ts). Options stop at the first positional, so `run /bin/ls -la` passes `-la`.
 * main.ts reads the common `run` command lines with run_args.ts's parser and only comes here for
 * the others (help, errors, unusual spellings).
 */
import { Command, Option } from "@commander-js/extra-typings";
import { RUN_OPTIONS, type RunFlags } from "./run_args.ts";
import { buildRun, restartPolicy, runAction } from "./run_action.ts";
import { createContainer } from "../container/start.ts";
import { UserError } from "../base/errors.ts";

const collect = (value: string, previous: string[]) => [...previous, value];

const EXAMPLES = `
Examples:
  mini-docker run /bin/sh                                  an interactive shell (./rootfs/alpine)
  mini-docker run alpine:3.18 cat /etc/alpine-release      an image (pulled if missing)
  mini-docker run --entrypoint /bin/sh alpine -c 'echo hi' the image's arguments after it
  mini-docker run --hostname test /bin/ls -la              options stop at the command
  mini-docker run --memory 100M --cpus 0.5 /bin/sh -c 'echo limited'
  mini-docker run -e GREETING=hi -w /tmp /bin/sh -c 'echo $GREETING from $PWD'
  mini-docker run --network none /bin/ip addr              only a loopback interface
  mini-docker run -d -p 8080:80 /bin/httpd -f -p 80 -h /etc  a web server on the host's port 8080
  mini-docker run --network app /bin/ping -c1 db           on a network of yours ("network create")
  mini-docker run --rootfs ./my-root /bin/true             another root filesystem
  mini-docker run -d --name web /bin/sh -c 'while :; do date; sleep 1; done'
  mini-docker run -d --restart on-failure:3 -l tier=batch /bin/sh -c 'exit 1'
  mini-docker run -it /bin/sh                              a shell on a pseudo-terminal

IMAGE is an image reference (pulled if missing). Without --image and --rootfs, a first
argument that is an absolute path is instead a command in ./rootfs/alpine (or
$MINI_DOCKER_ROOTFS; prepare it with "mini-docker rootfs"). The container's writes go to its
own layer. A foreground container is removed when it ends (as with --rm); a detached one (-d)
stays, with its log, until "rm". stdin is the container's with -i, or when it is a terminal.`;

/** Adds run's options (all, or all but `except`) to a command. */
function withRunOptions<C extends Command<[string[]]>>(cmd: C, except: readonly string[] = []): C {
  for (const option of RUN_OPTIONS) {
    if (except.some((flag) => option.flags.includes(flag))) continue;
    const o = new Option(option.flags, option.description);
    if (option.kind === "list") o.argParser(collect).default([] as string[]);
    else if (option.default !== undefined) o.default(option.default);
    cmd.addOption(o);
  }
  return cmd;
}

/** The `run` command. */
export function runCommand() {
  const cmd = new Command("run")
    .description("Run a command in a new container")
    .usage("[OPTIONS] IMAGE [COMMAND] [ARG...]")
    .argument("[image-and-command...]", "the image, then the command and its arguments")
    .passThroughOptions();
  return withRunOptions(cmd)
    .addHelpText("after", EXAMPLES)
    .action((command, opts) => runAction(command, opts as unknown as RunFlags));
}

/** `create`: a container made as `run -d` makes one, not started (see `start`). */
export function createCommand() {
  const cmd = new Command("create")
    .description('Create a container, not started ("start" starts it)')
    .usage("[OPTIONS] IMAGE [COMMAND] [ARG...]")
    .argument("[image-and-command...]", "the image, then the command and its arguments")
    .passThroughOptions();
  return withRunOptions(cmd, ["--detach", "--stats-report"])
    .addHelpText(
      "after",
      `
Examples:
  mini-docker create --name web -p 8080:80 /bin/httpd -f -p 80 -h /etc
  mini-docker start web                       in the background, as run -d
  mini-docker create -it --name sh alpine /bin/sh && mini-docker start -ai sh

A created container starts as a detached one: its output goes to its log, and "start -a" or
"attach" shows it.`,
    )
    .action(async (positional, flags) => {
      if (Deno.uid() !== 0) {
        throw new UserError(
          "mini-docker create needs root (namespaces, mounts, cgroups): run it with sudo",
        );
      }
      const opts = flags as unknown as RunFlags;
      restartPolicy(opts);
      // Not detached as `run -d` is: with -i, its stdin ends with that of the first client that
      // attaches (Docker's StdinOnce, `start -ai`).
      const { spec, meta, defaultSeccomp } = await buildRun(positional, opts);
      await createContainer(spec, meta, { autoRemove: opts.rm === true, defaultSeccomp });
      console.log(meta.id);
    });
}
