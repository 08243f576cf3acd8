/**
 * `mini-docker runtime [GLOBAL OPTIONS] COMMAND ...`: runc's command line, so that containerd's
 * shim (io.containerd.runc.v2), Podman and CRI-O can use mini-docker as their OCI runtime (a
 * wrapper script that execs `mini-docker runtime "$@"`, or the compiled binary installed as
 * `mini-docker-runtime`). The global options are runc's: `--root DIR` (the containers' state,
 * default /run/mini-docker-runtime), `--log FILE` and `--log-format text|json` (where errors
 * and, with `--debug`, each command go: containerd reads the last `{"level":"error","msg":...}`
 * line of that file to say why a command failed), `--systemd-cgroup` (refused). Flags are read as
 * urfave/cli reads runc's: `-x` or `--x`, `--x=V` or `--x V`, before the positionals.
 */
import { UserError } from "../../base/errors.ts";
import { oneLine } from "../../base/errors.ts";

type Commands = typeof import("./commands.ts");

/** The global options, as the commands see them. */
export interface Globals {
  root: string;
  log?: string;
  logFormat: "text" | "json";
  debug: boolean;
}

/** The usage of every command, for errors and `--help`. */
const USAGE = `mini-docker runtime: runc's command line (see README "Runtime mode")

usage: mini-docker runtime [--root DIR] [--log FILE] [--log-format text|json] [--debug] COMMAND

commands:
  spec [--bundle DIR]          write runc's default config.json
  features                     what this runtime supports, as runc's JSON
  create --bundle DIR [--pid-file F] [--console-socket S] ID
  start ID                     run a created container's process
  run --bundle DIR [--pid-file F] [--detach] ID
  state ID                     the OCI state JSON
  kill [--all] ID [SIGNAL]     default SIGTERM; names or numbers
  delete [--force] ID
  list [--format table|json] [-q]
  ps [--format table|json] ID [ps OPTIONS]
  pause ID, resume ID
  exec [--process FILE] [--detach] [--pid-file F] [--console-socket S] [-t] [--cwd D]
       [--env K=V] [--user UID[:GID]] ID [COMMAND ARG...]`;

/** A command line split into options (by name, repeatable) and positionals. */
export interface Parsed {
  options: Map<string, string[]>;
  positionals: string[];
}

/**
 * Reads options until the first positional (urfave/cli stops there), `--` ends them too.
 * `spec` says which take a value; `aliases` maps short names.
 */
export function parseFlags(
  args: readonly string[],
  spec: { values: string[]; booleans: string[]; aliases?: Record<string, string> },
  command: string,
): Parsed {
  const options = new Map<string, string[]>();
  let i = 0;
  for (; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--") {
      i++;
      break;
    }
    if (!arg.startsWith("-") || arg === "-") break;
    const body = arg.replace(/^--?/, "");
    const eq = body.indexOf("=");
    let name = eq < 0 ? body : body.slice(0, eq);
    name = spec.aliases?.[name] ?? name;
    let value: string;
    if (spec.values.includes(name)) {
      if (eq >= 0) value = body.slice(eq + 1);
      else if (i + 1 < args.length) value = args[++i]!;
      else throw new UserError(`${command}: flag needs an argument: ${arg}`, 1);
    } else if (spec.booleans.includes(name)) {
      value = eq < 0 ? "true" : body.slice(eq + 1);
      if (value !== "true" && value !== "false") {
        throw new UserError(`${command}: invalid boolean value "${value}" for ${arg}`, 1);
      }
    } else {
      throw new UserError(`${command}: flag provided but not defined: ${arg}`, 1);
    }
    options.set(name, [...(options.get(name) ?? []), value]);
  }
  return { options, positionals: args.slice(i) };
}

/** The last value of an option. */
export function option(p: Parsed, name: string): string | undefined {
  return p.options.get(name)?.at(-1);
}

/** Whether a boolean option is set. */
export function flag(p: Parsed, name: string): boolean {
  return option(p, name) === "true";
}

/** An RFC 3339 time, as logrus writes it. */
function now(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, "Z");
}

/** Appends one line to the log (`--log`), as runc's logrus does in either format. */
export function logLine(g: Globals, level: "error" | "debug" | "warning", msg: string): void {
  if (g.log === undefined) return;
  const line = g.logFormat === "json"
    ? JSON.stringify({ level, msg, time: now() })
    : `time="${now()}" level=${level} msg=${JSON.stringify(msg)}`;
  try {
    Deno.writeTextFileSync(g.log, line + "\n", { append: true, create: true });
  } catch { /* the log is best effort, as runc's */ }
}

/** Runs the runtime's command line; returns the exit code. */
export async function runtimeMain(args: readonly string[]): Promise<number> {
  const g: Globals = { root: "/run/mini-docker-runtime", logFormat: "text", debug: false };
  try {
    const parsed = parseFlags(args, {
      values: ["root", "log", "log-format", "criu"],
      booleans: ["debug", "systemd-cgroup", "help", "version", "rootless"],
      aliases: { h: "help", v: "version" },
    }, "runtime");
    g.log = option(parsed, "log");
    g.root = option(parsed, "root") ?? g.root;
    g.debug = flag(parsed, "debug");
    const format = option(parsed, "log-format") ?? "text";
    if (format !== "text" && format !== "json") {
      throw new UserError(`invalid log-format "${format}": use text or json`, 1);
    }
    g.logFormat = format;
    if (flag(parsed, "systemd-cgroup")) {
      throw new UserError(
        "--systemd-cgroup is not supported: mini-docker manages cgroupfs itself (drop the option, or SystemdCgroup = false in containerd's runc options)",
        1,
      );
    }
    if (option(parsed, "rootless") === "true") {
      throw new UserError("--rootless is not supported: mini-docker's runtime needs root", 1);
    }
    if (option(parsed, "criu") !== undefined) {
      throw new UserError("--criu is not supported: mini-docker cannot checkpoint", 1);
    }
    if (flag(parsed, "version")) {
      const { VERSION } = await import("../../base/version.ts");
      console.log(`mini-docker runtime version ${VERSION}\nspec: 1.0.2`);
      return 0;
    }
    const [command, ...rest] = parsed.positionals;
    if (command === undefined || flag(parsed, "help") || command === "help") {
      console.log(USAGE);
      return command === undefined && !flag(parsed, "help") ? 1 : 0;
    }
    if (!g.root.startsWith("/")) {
      throw new UserError(`--root "${g.root}": must be an absolute path`, 1);
    }
    // The engine's state, locks, gates and /proc peers of these containers live under --root:
    // apart from mini-docker's own containers (whose clean-ups never see them).
    Deno.env.set("MINI_DOCKER_RUNROOT", g.root);
    Deno.env.set("MINI_DOCKER_ROOT", g.root);
    if (g.debug) logLine(g, "debug", `mini-docker runtime ${args.join(" ")}`);
    const commands = await import("./commands.ts") as Commands;
    return await commands.dispatch(g, command, rest);
  } catch (err) {
    const message = oneLine(err instanceof Error ? err.message : String(err));
    logLine(g, "error", message);
    console.error(message);
    return err instanceof UserError ? (err.exitCode === 125 ? 1 : err.exitCode) : 1;
  }
}
