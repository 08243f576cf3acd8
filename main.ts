/**
 * mini-docker's entry point: argv -> command. The same program is also, with a hidden first
 * argument, the supervisor of detached containers. Each path loads only its own modules
 * (base/lazy.ts): a `run` loads neither commander nor the other commands, and starts the thread
 * that will become its container first thing, so that the thread's boot (about 12 ms) overlaps
 * everything else the run does. Start-up time is every container's.
 */
import { trace } from "./base/trace.ts";
import { lazy } from "./base/lazy.ts";
import { reportError } from "./base/errors.ts";

type Threads = typeof import("./container/threads.ts");
type Supervisor = typeof import("./container/supervisor.ts");
type RunAction = typeof import("./cmd/run_action.ts");
type Program = typeof import("./cmd/program.ts");
type RunArgs = typeof import("./cmd/run_args.ts");
type Runtime = typeof import("./cmd/runtime/main.ts");
trace("main.ts");
const load = <T>(path: string) => lazy<T>(path, import.meta.url);

/** Installed as `mini-docker-runtime` (a compiled binary): runc's command line only. */
const runtimeBinary = /(^|\/)mini-docker-runtime$/.test(Deno.execPath());
if (Deno.args[0] === "__supervisor") {
  await (await load<Supervisor>("./container/supervisor.ts")).supervise();
} else if (Deno.args[0] === "runtime" || runtimeBinary) {
  // runc's command line, for containerd, Podman and CRI-O (cmd/runtime/).
  const runtime = await load<Runtime>("./cmd/runtime/main.ts");
  Deno.exit(await runtime.runtimeMain(runtimeBinary ? Deno.args : Deno.args.slice(1)));
} else {
  // A foreground `run` with the usual spellings skips commander (see cmd/run_args.ts), and its
  // container's thread starts booting now.
  const run = (await load<RunArgs>("./cmd/run_args.ts")).parseRunArgs(Deno.args);
  const thread = run !== undefined && !run.opts.detach && Deno.uid() === 0
    ? (await load<Threads>("./container/threads.ts")).ContainerThread.start()
    : undefined;
  trace("thread started, command line read");
  let code = 0;
  if (run !== undefined) {
    try {
      await (await load<RunAction>("./cmd/run_action.ts")).runAction(run.command, run.opts, thread);
    } catch (err) {
      code = reportError(err);
    }
  } else {
    thread?.end();
    code = await (await load<Program>("./cmd/program.ts")).main(Deno.args);
  }
  thread?.end();
  trace("exit");
  Deno.exit(code);
}
