/**
 * `mini-docker run [options] CMD [ARGS...]`: flags -> ContainerSpec (validated before any
 * work) -> runtime. Options stop at the first positional, so `run /bin/ls -la` passes `-la`.
 */
import { Command } from "@commander-js/extra-typings";
import { isAbsolute, resolve } from "node:path";
import { DEFAULT_PATH, newSpec, validateSpec } from "../container/spec.ts";
import { ExitCode, UserError } from "../container/errors.ts";
import { mergeEnv, parseEnvEntry, parseEnvFile } from "../container/units.ts";
import { addResourceOptions, resourcesFromFlags, statsReporter } from "./resources.ts";
import { newId, stateDir } from "../container/state.ts";
import { cgroupParent } from "../container/paths.ts";
import { runContainer } from "../container/foreground.ts";
import type { PrespawnedInit } from "../container/parent.ts";
import { startDetached } from "../container/supervisor.ts";
import { INIT_ANNOTATION } from "../container/protocol.ts";
import { assertRootfs, defaultRootfs, rootfsStatus } from "../rootfs/prepare.ts";
import { lookupUser, resolveImage } from "../images/mod.ts";

type ResolvedImage = Awaited<ReturnType<typeof resolveImage>>;

const collect = (value: string, previous: string[]) => [...previous, value];

const EXAMPLES = `
Examples:
  mini-docker run /bin/sh                                  an interactive shell
  mini-docker run --hostname test /bin/ls -la              options stop at the command
  mini-docker run --memory 100M --cpus 0.5 /bin/sh -c 'echo limited'
  mini-docker run -e GREETING=hi -w /tmp /bin/sh -c 'echo $GREETING from $PWD'
  mini-docker run --network none /bin/ip addr              only a loopback interface
  mini-docker run --rootfs ./my-root /bin/true             another root filesystem
  mini-docker run -d --name web /bin/sh -c 'while :; do date; sleep 1; done'
  mini-docker run -it /bin/sh                              a shell on a pseudo-terminal

The root filesystem defaults to ./rootfs/alpine (or $MINI_DOCKER_ROOTFS); prepare it with
"mini-docker rootfs". The container's writes go to its own layer. A foreground container is
removed when it ends (as with --rm); a detached one (-d) stays, with its log, until "rm".
In the foreground stdin is always passed through, so -i is the default there.`;

/** The `run` command. */
export function runCommand(prespawned?: PrespawnedInit) {
  return addResourceOptions(
    new Command("run")
      .description("Run a command in a new container")
      .usage("[options] COMMAND [ARG...]")
      .argument("[command...]", "the command to run and its arguments")
      .passThroughOptions()
      .option(
        "--hostname <name>",
        "container host name (default: the first 12 hex digits of its id)",
      )
      .option("--name <name>", "assign a name to the container")
      .option("-m, --memory <size>", "memory limit, e.g. 100M, 1.5g (units b, k, m, g)")
      .option("--cpus <number>", "number of CPUs, e.g. 0.5"),
  )
    .option(
      "-e, --env <KEY=VALUE>",
      "set an environment variable (repeatable; KEY alone copies it)",
      collect,
      [] as string[],
    )
    .option(
      "--env-file <file>",
      "read environment variables from a file (repeatable)",
      collect,
      [] as string[],
    )
    .option(
      "-w, --workdir <dir>",
      "working directory inside the container (default: the image's, or /)",
    )
    .option("-u, --user <user>", "user name or uid, with an optional :group or :gid")
    .option("--rootfs <dir>", "root filesystem directory (default: ./rootfs/alpine)")
    .option("--image <name>", "run an image (pulled if missing) instead of a rootfs directory")
    .option("--entrypoint <command>", "override the image's entrypoint")
    .option(
      "--network <mode>",
      "network: host (share the host's, default) or none (only loopback)",
      "host",
    )
    .option("-d, --detach", "run in the background and print the container id")
    .option("--rm", "remove the container when it exits (foreground containers always are)")
    .option("-i, --interactive", "keep stdin open (the default in the foreground)")
    .option("-t, --tty", "allocate a pseudo-terminal")
    .option("--init", "run a small init as PID 1 that forwards signals and reaps zombies")
    .addHelpText("after", EXAMPLES)
    .action(async (command, opts) => {
      if (Deno.uid() !== 0) {
        throw new UserError(
          "mini-docker run needs root (namespaces, mounts, cgroups): run it with sudo",
        );
      }
      if (opts.detach && opts.statsReport) {
        throw new UserError(
          '--stats-report needs a foreground run: drop -d, or watch it with "mini-docker stats"',
        );
      }
      if (!opts.detach && opts.tty && opts.interactive && !Deno.stdin.isTerminal()) {
        throw new UserError("The input device is not a TTY: drop -t, or run from a terminal");
      }
      const { spec, meta } = await buildRun(command, opts);
      if (opts.detach) {
        prespawned?.[Symbol.dispose]();
        const id = await startDetached({
          spec,
          meta,
          interactive: opts.interactive === true,
          tty: opts.tty === true,
          autoRemove: opts.rm === true,
        });
        console.log(id);
        return;
      }
      const code = await runContainer(spec, meta, {
        prespawned,
        tty: opts.tty === true,
        beforeCleanup: opts.statsReport ? statsReporter(spec.linux.resources) : undefined,
      });
      // The exit code is the container's; main.ts exits with it.
      throw new ExitCode(code);
    });
}

type RunFlags = ReturnType<ReturnType<typeof runCommand>["opts"]>;

/** The image run when neither --image nor --rootfs is given and ./rootfs/alpine is missing. */
export function defaultImage(): string {
  return Deno.env.get("MINI_DOCKER_DEFAULT_IMAGE") || "alpine:3.18";
}

/** Where the container's root comes from: a rootfs directory or an image's layers. */
interface RootSource {
  layers: string[];
  rootfs?: string;
  image?: ResolvedImage;
}

async function resolveRoot(opts: RunFlags): Promise<RootSource> {
  // Pull progress is for a person at a terminal; in scripts only the outcome counts.
  const log = Deno.stderr.isTerminal() ? (line: string) => console.error(line) : () => {};
  if (opts.image !== undefined) {
    if (opts.rootfs !== undefined) {
      throw new UserError("--image and --rootfs cannot be used together: choose one root");
    }
    const image = await resolveImage(opts.image, { pull: "missing", log });
    return { layers: image.layers, image };
  }
  if (opts.rootfs !== undefined) {
    assertRootfs(opts.rootfs);
    return { layers: [resolve(opts.rootfs)], rootfs: resolve(opts.rootfs) };
  }
  const dir = defaultRootfs();
  if (rootfsStatus(dir) === "ok") return { layers: [resolve(dir)], rootfs: resolve(dir) };
  // No default rootfs: the default image, pulled where the network allows.
  try {
    const image = await resolveImage(defaultImage(), { pull: "missing", log });
    return { layers: image.layers, image };
  } catch (err) {
    throw new UserError(
      `Rootfs "${dir}" does not exist and the default image "${defaultImage()}" is not available (${
        (err as Error).message
      }): prepare the rootfs with "mini-docker rootfs", or pass --rootfs DIR or --image NAME`,
    );
  }
}

/** Turns the command line into a validated spec. Reads files and images named by flags. */
export async function buildRun(positional: string[], opts: RunFlags) {
  if (opts.network !== "host" && opts.network !== "none") {
    throw new UserError(`Invalid network mode "${opts.network}": use "host" or "none"`);
  }
  if (opts.workdir !== undefined && !isAbsolute(opts.workdir)) {
    throw new UserError(`Invalid working directory "${opts.workdir}": it must be an absolute path`);
  }
  if (positional.length === 0 && opts.image === undefined && opts.entrypoint === undefined) {
    throw new UserError(
      'No command given: "mini-docker run [options] COMMAND [ARG...]", e.g. /bin/sh',
    );
  }
  const resources = resourcesFromFlags(opts);
  const root = await resolveRoot(opts);
  const config = root.image?.config ?? {};

  // Docker's rules: --entrypoint replaces the image's entrypoint and drops its Cmd; arguments
  // after the options replace Cmd.
  const entrypoint = opts.entrypoint !== undefined ? [opts.entrypoint] : config.Entrypoint ?? [];
  const cmd = positional.length > 0
    ? positional
    : opts.entrypoint !== undefined
    ? []
    : config.Cmd ?? [];
  const command = [...entrypoint, ...cmd];
  if (command.length === 0) {
    throw new UserError(
      `No command given, and image "${opts.image}" has no Entrypoint or Cmd: pass one`,
    );
  }
  const userSpec = opts.user ?? config.User ?? "";
  const user = userSpec === "" ? undefined : lookupUser(root.layers, userSpec);
  const workdir = opts.workdir ?? (config.WorkingDir || "/");

  const id = newId();
  const hostname = opts.hostname ?? id.slice(0, 12);
  const lookup = (key: string) => Deno.env.get(key);
  const fileEnv = opts.envFile.flatMap((file) => {
    let text: string;
    try {
      text = Deno.readTextFileSync(file);
    } catch (err) {
      throw new UserError(`Cannot read env file "${file}": ${(err as Error).message}`);
    }
    return parseEnvFile(text, file, lookup);
  });
  const flagEnv = opts.env.map((e) => parseEnvEntry(e, lookup)).filter((e) => e !== undefined);
  const env = mergeEnv(
    [
      `PATH=${DEFAULT_PATH}`,
      `HOSTNAME=${hostname}`,
      `HOME=${user === undefined || user.uid === 0 ? "/root" : "/"}`,
      ...(opts.tty ? ["TERM=xterm"] : []),
    ],
    config.Env ?? [],
    fileEnv,
    flagEnv,
  );

  const layerDir = stateDir(id);
  const overlay = overlaySupported();
  if (!overlay) {
    console.error(
      "mini-docker: overlayfs is unavailable: the root is read-only, with tmpfs on /tmp, /run and /var/tmp",
    );
  }
  const spec = newSpec({
    args: command,
    env,
    cwd: workdir,
    user,
    hostname,
    rootPath: `${layerDir}/merged`,
    rootLayers: overlay
      ? { lower: root.layers, upper: `${layerDir}/upper`, work: `${layerDir}/work` }
      : { lower: root.layers },
    hostNetwork: opts.network === "host",
    terminal: opts.tty === true,
    resources,
    cgroupsPath: `${cgroupParent()}/${id}`,
    annotations: {
      ...(opts.name === undefined ? {} : { "org.mini-docker.name": opts.name }),
      ...(opts.init ? { [INIT_ANNOTATION]: "true" } : {}),
    },
  });
  validateSpec(spec);
  return {
    spec,
    meta: {
      id,
      name: opts.name,
      rootfs: root.rootfs,
      image: root.image?.id,
      imageRef: root.image?.ref,
    },
  };
}

/**
 * Whether containers get an overlayfs writable layer. `MINI_DOCKER_STORAGE=readonly` forces the
 * fallback (a read-only root plus tmpfs), which is also used when the kernel has no overlayfs.
 */
function overlaySupported(): boolean {
  const wanted = Deno.env.get("MINI_DOCKER_STORAGE");
  if (wanted === "readonly") return false;
  if (wanted !== undefined && wanted !== "overlay") {
    throw new UserError(`Invalid MINI_DOCKER_STORAGE "${wanted}": use "overlay" or "readonly"`);
  }
  try {
    if (/\toverlay\n/.test(Deno.readTextFileSync("/proc/filesystems"))) return true;
    Deno.statSync("/sys/module/overlay");
    return true;
  } catch {
    return false;
  }
}
