/**
 * mini-docker's entry point. The same program is several things: the command line, and (with
 * a hidden first argument) the init stage of a container, the exec stage that enters one, or
 * the supervisor of detached containers. The hidden stages never import the command-line
 * parser: the init stage's start-up time is every container's.
 */
import { EXEC_ARG, INIT_ARG, SUPERVISOR_ARG } from "./container/protocol.ts";

const stage = Deno.args[0];
if (stage === INIT_ARG) {
  (await import("./container/init.ts")).init();
} else if (stage === EXEC_ARG) {
  (await import("./container/exec.ts")).execStage();
} else if (stage === SUPERVISOR_ARG) {
  await (await import("./container/supervisor.ts")).supervise();
} else {
  // A foreground `run` starts its init stage first: the init's Deno start-up then overlaps
  // the loading of the command-line parser (see cmd/run_args.ts).
  let prespawned: import("./container/parent.ts").PrespawnedInit | undefined;
  if ((await import("./cmd/run_args.ts")).isForegroundRun(Deno.args) && Deno.uid() === 0) {
    try {
      prespawned = (await import("./container/parent.ts")).prespawnInit();
    } catch {
      // No early start (e.g. the run root cannot be made): the run itself reports why.
    }
  }
  const { main } = await import("./cmd/program.ts");
  const code = await main(Deno.args, { prespawned });
  prespawned?.[Symbol.dispose]();
  Deno.exit(code);
}
