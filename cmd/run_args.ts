/**
 * What `main.ts` needs to know about a `run` command line before the command-line parser is
 * even loaded: whether it will run a container in the foreground, so that the init stage can
 * be started at once (its start-up then overlaps the parser's). A wrong guess costs only an
 * init stage that is told to leave; `run_args_test.ts` keeps the option list true.
 */

/** `run` options that take a value (the next argument, unless written --opt=value). */
export const RUN_VALUE_OPTIONS = new Set([
  "--hostname",
  "--name",
  "-m",
  "--memory",
  "--cpus",
  "-e",
  "--env",
  "--env-file",
  "-w",
  "--workdir",
  "-u",
  "--user",
  "--rootfs",
  "--image",
  "--entrypoint",
  "--network",
  "--memory-swap",
  "--memory-reservation",
  "--cpu-shares",
  "--cpuset-cpus",
  "--cpuset-mems",
  "--pids-limit",
]);

/** Whether `args` ("run", options..., command...) asks for a foreground container. */
export function isForegroundRun(args: readonly string[]): boolean {
  if (args[0] !== "run") return false;
  for (let i = 1; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--" || !a.startsWith("-")) return i > 1 || args.length > 1; // options end
    if (a === "--detach" || a === "--help" || a === "-h") return false;
    if (/^-[dit]+$/.test(a) && a.includes("d")) return false;
    if (RUN_VALUE_OPTIONS.has(a)) i++;
  }
  return true;
}
