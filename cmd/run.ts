/**
 * `mini-docker run [options] CMD [ARGS...]`: the commander command, built from the option
 * table in run_args.ts; the work is runAction's (run_action.ts). Options stop at the first
 * positional, so `run /bin/ls -la` passes `-la`. main.ts reads the common command lines with
 * run_args.ts's parser and only comes here for the others (help, errors, unusual spellings).
 */
import { Command, Option } from "@commander-js/extra-typings";
import { RUN_OPTIONS, type RunFlags } from "./run_args.ts";
import { runAction } from "./run_action.ts";

const collect = (value: string, previous: string[]) => [...previous, value];

const EXAMPLES = `
Examples:
  mini-docker run /bin/sh                                  an interactive shell
  mini-docker run --hostname test /bin/ls -la              options stop at the command
  mini-docker run --memory 100M --cpus 0.5 /bin/sh -c 'echo limited'
  mini-docker run -e GREETING=hi -w /tmp /bin/sh -c 'echo $GREETING from $PWD'
  mini-docker run --network none /bin/ip addr              only a loopback interface
  mini-docker run -d -p 8080:80 httpd -f -p 80 -h /etc      a web server on the host's port 8080
  mini-docker run --network app ping -c1 db                on a network of yours ("network create")
  mini-docker run --rootfs ./my-root /bin/true             another root filesystem
  mini-docker run -d --name web /bin/sh -c 'while :; do date; sleep 1; done'
  mini-docker run -it /bin/sh                              a shell on a pseudo-terminal

The root filesystem defaults to ./rootfs/alpine (or $MINI_DOCKER_ROOTFS); prepare it with
"mini-docker rootfs". The container's writes go to its own layer. A foreground container is
removed when it ends (as with --rm); a detached one (-d) stays, with its log, until "rm".
In the foreground stdin is always passed through, so -i is the default there.`;

/** The `run` command. */
export function runCommand() {
  const cmd = new Command("run")
    .description("Run a command in a new container")
    .usage("[options] COMMAND [ARG...]")
    .argument("[command...]", "the command to run and its arguments")
    .passThroughOptions();
  for (const option of RUN_OPTIONS) {
    const o = new Option(option.flags, option.description);
    if (option.kind === "list") o.argParser(collect).default([] as string[]);
    else if (option.default !== undefined) o.default(option.default);
    cmd.addOption(o);
  }
  return cmd
    .addHelpText("after", EXAMPLES)
    .action((command, opts) => runAction(command, opts as unknown as RunFlags));
}
