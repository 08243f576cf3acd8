/**
 * mini-docker's entry point. The same program is two things: the command line, and (with the
 * hidden first argument "__init") the init stage of a container. The init stage imports only
 * the runtime, never the command-line parser: its start-up time is every container's.
 */
import { INIT_ARG } from "./container/protocol.ts";

if (Deno.args[0] === INIT_ARG) {
  const { init } = await import("./container/init.ts");
  init();
} else {
  const { main } = await import("./cmd/program.ts");
  Deno.exit(await main(Deno.args));
}
