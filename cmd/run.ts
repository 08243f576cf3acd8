/**
 * `mini-docker run [options] CMD [ARGS...]`: flags -> ContainerSpec (validated before any
 * work) -> runtime. Options stop at the first positional, so `run /bin/ls -la` passes `-la`.
 */
import { Command } from "@commander-js/extra-typings";
import { isAbsolute, resolve } from "node:path";
import { DEFAULT_PATH, type LinuxResources, newSpec, validateSpec } from "../container/spec.ts";
import { ExitCode, UserError } from "../container/errors.ts";
import {
  mergeEnv,
  parseCpus,
  parseEnvEntry,
  parseEnvFile,
  parseMemory,
} from "../container/units.ts";
import { newId } from "../container/state.ts";
import { cgroupParent, dataRoot } from "../container/paths.ts";
import { runContainer } from "../container/parent.ts";
import { assertRootfs, defaultRootfs } from "../rootfs/prepare.ts";

const collect = (value: string, previous: string[]) => [...previous, value];

const EXAMPLES = `
Examples:
  mini-docker run /bin/sh                                  an interactive shell
  mini-docker run --hostname test /bin/ls -la              options stop at the command
  mini-docker run --memory 100M --cpus 0.5 /bin/sh -c 'echo limited'
  mini-docker run -e GREETING=hi -w /tmp /bin/sh -c 'echo $GREETING from $PWD'
  mini-docker run --network none /bin/ip addr              only a loopback interface
  mini-docker run --rootfs ./my-root /bin/true             another root filesystem

The root filesystem defaults to ./rootfs/alpine (or $MINI_DOCKER_ROOTFS); prepare it with
"mini-docker rootfs". The container's writes go to its own layer and vanish when it ends.`;

/** The `run` command. */
export function runCommand() {
  return new Command("run")
    .description("Run a command in a new container")
    .usage("[options] COMMAND [ARG...]")
    .argument("[command...]", "the command to run and its arguments")
    .passThroughOptions()
    .option("--hostname <name>", "container host name (default: the first 12 hex digits of its id)")
    .option("--name <name>", "assign a name to the container")
    .option("-m, --memory <size>", "memory limit, e.g. 100M, 1.5g (units b, k, m, g)")
    .option("--cpus <number>", "number of CPUs, e.g. 0.5")
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
    .option("-w, --workdir <dir>", "working directory inside the container", "/")
    .option("--rootfs <dir>", "root filesystem directory (default: ./rootfs/alpine)")
    .option(
      "--network <mode>",
      "network: host (share the host's, default) or none (only loopback)",
      "host",
    )
    .addHelpText("after", EXAMPLES)
    .action(async (command, opts) => {
      if (Deno.uid() !== 0) {
        throw new UserError(
          "mini-docker run needs root (namespaces, mounts, cgroups): run it with sudo",
        );
      }
      const { spec, meta } = buildRun(command, opts);
      const code = await runContainer(spec, meta);
      // The exit code is the container's; main.ts exits with it.
      throw new ExitCode(code);
    });
}

type RunFlags = ReturnType<ReturnType<typeof runCommand>["opts"]>;

/** Turns the command line into a validated spec. Pure but for reading files named by flags. */
export function buildRun(command: string[], opts: RunFlags) {
  if (command.length === 0) {
    throw new UserError(
      'No command given: "mini-docker run [options] COMMAND [ARG...]", e.g. /bin/sh',
    );
  }
  if (opts.network !== "host" && opts.network !== "none") {
    throw new UserError(`Invalid network mode "${opts.network}": use "host" or "none"`);
  }
  if (!isAbsolute(opts.workdir)) {
    throw new UserError(`Invalid working directory "${opts.workdir}": it must be an absolute path`);
  }
  const resources: LinuxResources = {};
  if (opts.memory !== undefined) resources.memory = { limit: parseMemory(opts.memory) };
  if (opts.cpus !== undefined) resources.cpu = parseCpus(opts.cpus, navigator.hardwareConcurrency);

  const shownRootfs = opts.rootfs ?? defaultRootfs();
  assertRootfs(shownRootfs);
  const rootfs = resolve(shownRootfs);

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
    [`PATH=${DEFAULT_PATH}`, `HOSTNAME=${hostname}`, "HOME=/root"],
    fileEnv,
    flagEnv,
  );

  const layerDir = `${dataRoot()}/containers/${id}`;
  const overlay = overlaySupported();
  if (!overlay) {
    console.error(
      "mini-docker: overlayfs is unavailable: the root is read-only, with tmpfs on /tmp, /run and /var/tmp",
    );
  }
  const spec = newSpec({
    args: command,
    env,
    cwd: opts.workdir,
    hostname,
    rootPath: `${layerDir}/merged`,
    rootLayers: overlay
      ? { lower: [rootfs], upper: `${layerDir}/upper`, work: `${layerDir}/work` }
      : { lower: [rootfs] },
    hostNetwork: opts.network === "host",
    resources,
    cgroupsPath: `${cgroupParent()}/${id}`,
    annotations: opts.name === undefined ? {} : { "org.mini-docker.name": opts.name },
  });
  validateSpec(spec);
  return { spec, meta: { id, name: opts.name, rootfs } };
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
