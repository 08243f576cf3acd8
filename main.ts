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
  const { main } = await import("./cmd/program.ts");
  Deno.exit(await main(Deno.args));
}
