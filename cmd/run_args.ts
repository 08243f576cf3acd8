/**
 * `run`'s options, as one table that both parsers read: commander builds the `run` command
 * from it (cmd/run.ts), and `parseRunArgs` below reads the common command lines without
 * loading commander at all. Commander is an npm package: importing it starts Deno's Node
 * compatibility layer, about 30 ms, which a `run /bin/true` would otherwise spend before its
 * container exists. `run_args_test.ts` checks that both parsers give the same result, and the
 * fast one gives up (returns undefined) on anything it does not know, so commander still
 * decides every help text, error and unusual spelling.
 */

import type { ResourceFlags } from "./resources.ts";

/** One option of `run`. */
export interface RunOption {
  /** As commander writes them: "-m, --memory <size>", "--rm". */
  flags: string;
  description: string;
  /** flag: a boolean; value: takes the next argument; list: a value, repeatable, collected. */
  kind: "flag" | "value" | "list";
  /** The value when the option is absent (lists start empty). */
  default?: string;
}

/** The options of `run`, in the order `run --help` lists them. */
export const RUN_OPTIONS: readonly RunOption[] = [
  {
    flags: "--hostname <name>",
    description: "container host name (default: the first 12 hex digits of its id)",
    kind: "value",
  },
  { flags: "--name <name>", description: "assign a name to the container", kind: "value" },
  {
    flags: "-m, --memory <size>",
    description: "memory limit, e.g. 100M, 1.5g (units b, k, m, g)",
    kind: "value",
  },
  { flags: "--cpus <number>", description: "number of CPUs, e.g. 0.5", kind: "value" },
  {
    flags: "--memory-swap <size>",
    description:
      "memory plus swap limit (-1: unlimited swap; default: twice --memory where swap is accounted)",
    kind: "value",
  },
  {
    flags: "--memory-reservation <size>",
    description: "memory soft limit, at most --memory",
    kind: "value",
  },
  {
    flags: "--cpu-shares <number>",
    description: "relative CPU weight (default 1024)",
    kind: "value",
  },
  {
    flags: "--cpuset-cpus <list>",
    description: "CPUs the container may run on, e.g. 0-3,5",
    kind: "value",
  },
  {
    flags: "--cpuset-mems <list>",
    description: "memory nodes the container may use, e.g. 0-1",
    kind: "value",
  },
  {
    flags: "--pids-limit <number>",
    description: "maximum number of processes (-1: unlimited)",
    kind: "value",
  },
  {
    flags: "--stats-report",
    description: "print the resources used (peak memory, CPU time, ...) at the end",
    kind: "flag",
  },
  {
    flags: "-e, --env <KEY=VALUE>",
    description: "set an environment variable (repeatable; KEY alone copies it)",
    kind: "list",
  },
  {
    flags: "--env-file <file>",
    description: "read environment variables from a file (repeatable)",
    kind: "list",
  },
  {
    flags: "-w, --workdir <dir>",
    description: "working directory inside the container (default: the image's, or /)",
    kind: "value",
  },
  {
    flags: "-u, --user <user>",
    description: "user name or uid, with an optional :group or :gid",
    kind: "value",
  },
  {
    flags: "--rootfs <dir>",
    description: "root filesystem directory (default: ./rootfs/alpine)",
    kind: "value",
  },
  {
    flags: "--image <name>",
    description: "run an image (pulled if missing) instead of a rootfs directory",
    kind: "value",
  },
  {
    flags: "--entrypoint <command>",
    description: "override the image's entrypoint",
    kind: "value",
  },
  {
    flags: "--network <network>",
    description:
      "bridge (the default network), host (share the host's), none (only loopback), or a network's name",
    kind: "value",
    default: "bridge",
  },
  {
    flags: "--cgroupns <mode>",
    description:
      "private (a cgroup namespace of its own: its cgroup is its /) or host; Docker's default: private on cgroup v2, host on v1",
    kind: "value",
  },
  {
    flags: "--network-alias <alias>",
    description: "another name of the container on a user-defined network (repeatable)",
    kind: "list",
  },
  {
    flags: "--ip <address>",
    description: "the container's IPv4 address on a user-defined network",
    kind: "value",
  },
  {
    flags: "-p, --publish <[ip:]host:container[/proto]>",
    description:
      "publish a container port on the host, e.g. 8080:80, or 80 (a free port) (repeatable)",
    kind: "list",
  },
  {
    flags: "-P, --publish-all",
    description: "publish every exposed port on a free host port",
    kind: "flag",
  },
  {
    flags: "--expose <port[/proto]>",
    description: "expose a port or a range, for -P (repeatable)",
    kind: "list",
  },
  {
    flags: "--dns <address>",
    description: "a name server for the container (repeatable)",
    kind: "list",
  },
  {
    flags: "--add-host <host:ip>",
    description: "add a line to /etc/hosts, e.g. db:10.0.0.5 or gw:host-gateway (repeatable)",
    kind: "list",
  },
  {
    flags: "-d, --detach",
    description: "run in the background and print the container id",
    kind: "flag",
  },
  {
    flags: "--restart <policy>",
    description:
      "no, on-failure[:max-retries], always or unless-stopped: start it again when it exits (detached containers)",
    kind: "value",
  },
  {
    flags: "-l, --label <KEY=VALUE>",
    description: "set a label on the container (repeatable)",
    kind: "list",
  },
  {
    flags: "--rm",
    description: "remove the container when it exits (foreground containers always are)",
    kind: "flag",
  },
  {
    flags: "-i, --interactive",
    description: "attach stdin (in the foreground it is attached anyway when it is a terminal)",
    kind: "flag",
  },
  { flags: "-t, --tty", description: "allocate a pseudo-terminal", kind: "flag" },
  {
    flags: "--init",
    description: "run an init (tini) as PID 1 that forwards signals and reaps zombies",
    kind: "flag",
  },
  {
    flags: "--cap-add <capability>",
    description: "add a Linux capability, e.g. NET_ADMIN, or ALL (repeatable)",
    kind: "list",
  },
  {
    flags: "--cap-drop <capability>",
    description: "drop a Linux capability, e.g. CHOWN, or ALL (repeatable)",
    kind: "list",
  },
  {
    flags: "--privileged",
    description: "every capability, every device, no seccomp filter: no security boundary",
    kind: "flag",
  },
  {
    flags: "--security-opt <option>",
    description: "seccomp=unconfined, seccomp=PROFILE.json, no-new-privileges (repeatable)",
    kind: "list",
  },
  {
    flags: "--device <host[:container[:rwm]]>",
    description: "give the container a host device (repeatable)",
    kind: "list",
  },
  {
    flags: "--ulimit <name=soft[:hard]>",
    description: "a resource limit, e.g. nofile=1024:2048 (repeatable)",
    kind: "list",
  },
  {
    flags: "-v, --volume <[source:]target[:options]>",
    description:
      "bind a host path (/srv:/data:ro), a named volume (data:/data) or an anonymous one (/data) (repeatable)",
    kind: "list",
  },
  {
    flags: "--mount <type=...,source=...,target=...>",
    description:
      "a bind, volume or tmpfs mount, Docker's keys: type, source, target, readonly, bind-propagation, volume-nocopy, tmpfs-size, tmpfs-mode (repeatable)",
    kind: "list",
  },
  {
    flags: "--tmpfs <path[:options]>",
    description: "a tmpfs at path, e.g. /run:size=64m,mode=1777 (repeatable)",
    kind: "list",
  },
  {
    flags: "--read-only",
    description: "mount the root filesystem read-only (volumes and tmpfs stay writable)",
    kind: "flag",
  },
  {
    flags: "--volumes-from <container[:ro|:rw]>",
    description: "mount the volumes and binds of another container (repeatable)",
    kind: "list",
  },
];

/** `run`'s options as its action receives them (commander's `opts()`: camelCase keys). */
export interface RunFlags extends ResourceFlags {
  hostname?: string;
  name?: string;
  statsReport?: true;
  env: string[];
  envFile: string[];
  workdir?: string;
  user?: string;
  rootfs?: string;
  image?: string;
  entrypoint?: string;
  network: string;
  cgroupns?: string;
  networkAlias: string[];
  ip?: string;
  publish: string[];
  publishAll?: true;
  expose: string[];
  dns: string[];
  addHost: string[];
  detach?: true;
  restart?: string;
  label: string[];
  rm?: true;
  interactive?: true;
  tty?: true;
  init?: true;
  capAdd: string[];
  capDrop: string[];
  privileged?: true;
  securityOpt: string[];
  device: string[];
  ulimit: string[];
  volume: string[];
  mount: string[];
  tmpfs: string[];
  readOnly?: true;
  volumesFrom: string[];
}

/** A parsed `run` command line. */
export interface RunArgs {
  /**
   * Everything after the options: IMAGE [COMMAND] [ARG...], or the command alone (with
   * --image or --rootfs, or when it is an absolute path: see run_action.ts).
   */
  command: string[];
  opts: RunFlags;
}

/** The short and long names of an option, and its key in `RunFlags`. */
export function optionNames(option: RunOption): { short?: string; long: string; key: string } {
  const names = option.flags.split(/[ ,]+/).filter((n) => n.startsWith("-"));
  const long = names.find((n) => n.startsWith("--"))!;
  const short = names.find((n) => !n.startsWith("--"));
  const key = long.slice(2).replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
  return { short, long, key };
}

const BY_NAME = new Map<string, { option: RunOption; key: string }>();
for (const option of RUN_OPTIONS) {
  const { short, long, key } = optionNames(option);
  BY_NAME.set(long, { option, key });
  if (short !== undefined) BY_NAME.set(short, { option, key });
}

/**
 * Reads `args` ("run", options..., command...) as commander would, or returns undefined when
 * it holds anything but the plain spellings (`--opt value`, `--opt=value`, `-o value`, `-it`):
 * help, an unknown option, a missing value, `--`, `-m100m`. Options end at the first argument
 * that is not one, as commander's passThroughOptions: `run /bin/ls -la` keeps `-la`.
 */
export function parseRunArgs(args: readonly string[]): RunArgs | undefined {
  if (args[0] !== "run") return undefined;
  const opts: Record<string, unknown> = {};
  for (const option of RUN_OPTIONS) if (option.kind === "list") opts[optionNames(option).key] = [];
  for (const option of RUN_OPTIONS) {
    if (option.default !== undefined) opts[optionNames(option).key] = option.default;
  }
  let i = 1;
  for (; i < args.length; i++) {
    const arg = args[i]!;
    if (arg.length < 2 || !arg.startsWith("-")) break; // the command
    if (arg === "--") return undefined;
    if (/^-[a-zA-Z]{2,}$/.test(arg)) {
      // Single-letter booleans written together: -it, -dit.
      for (const letter of arg.slice(1)) {
        const found = BY_NAME.get(`-${letter}`);
        if (found === undefined || found.option.kind !== "flag") return undefined;
        opts[found.key] = true;
      }
      continue;
    }
    const eq = arg.startsWith("--") ? arg.indexOf("=") : -1;
    const name = eq < 0 ? arg : arg.slice(0, eq);
    const found = BY_NAME.get(name);
    if (found === undefined) return undefined;
    if (found.option.kind === "flag") {
      if (eq >= 0) return undefined;
      opts[found.key] = true;
      continue;
    }
    const value = eq >= 0 ? arg.slice(eq + 1) : args[++i];
    if (value === undefined) return undefined;
    if (found.option.kind === "list") (opts[found.key] as string[]).push(value);
    else opts[found.key] = value;
  }
  return { command: args.slice(i), opts: opts as unknown as RunFlags };
}
