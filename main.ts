/**
 * mini-docker's entry point. The same program is several things: the command line, and (with
 * a hidden first argument) the init stage of a container, the exec stage that enters one, or
 * the supervisor of detached containers. Each loads only its own modules (container/lazy.ts):
 * the hidden stages never load the command-line parser, and a `run` loads neither commander
 * nor the other commands. Start-up time is every container's.
 */
import { EXEC_ARG, INIT_ARG, SUPERVISOR_ARG } from "./container/protocol.ts";
import { lazy } from "./base/lazy.ts";
import { reportError } from "./base/errors.ts";

type Init = typeof import("./container/init.ts");
type Exec = typeof import("./container/exec.ts");
type Supervisor = typeof import("./container/supervisor.ts");
type Spawn = typeof import("./container/spawn.ts");
type RunAction = typeof import("./cmd/run_action.ts");
type Program = typeof import("./cmd/program.ts");
type RunArgs = typeof import("./cmd/run_args.ts");
const load = <T>(path: string) => lazy<T>(path, import.meta.url);

const stage = Deno.args[0];
if (stage === INIT_ARG) {
  (await load<Init>("./container/init.ts")).init();
} else if (stage === EXEC_ARG) {
  (await load<Exec>("./container/exec.ts")).execStage();
} else if (stage === SUPERVISOR_ARG) {
  await (await load<Supervisor>("./container/supervisor.ts")).supervise();
} else {
  // `run` with the usual spellings skips commander (see cmd/run_args.ts); a foreground one
  // starts its init stage first, so that the init's Deno start-up overlaps the CLI's work.
  const run = (await load<RunArgs>("./cmd/run_args.ts")).parseRunArgs(Deno.args);
  let prespawned: import("./container/spawn.ts").PrespawnedInit | undefined;
  if (run !== undefined && !run.opts.detach && Deno.uid() === 0) {
    try {
      prespawned = (await load<Spawn>("./container/spawn.ts")).prespawnInit();
    } catch {
      // No early start (e.g. the run root cannot be made): the run itself reports why.
    }
  }
  let code = 0;
  if (run !== undefined) {
    try {
      await (await load<RunAction>("./cmd/run_action.ts")).runAction(
        run.command,
        run.opts,
        prespawned,
      );
    } catch (err) {
      code = reportError(err);
    }
  } else {
    code = await (await load<Program>("./cmd/program.ts")).main(Deno.args);
  }
  prespawned?.[Symbol.dispose]();
  Deno.exit(code);
}
