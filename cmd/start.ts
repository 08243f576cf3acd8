/**
 * `start`, `restart` and `attach`: containers that exist, started again from their saved spec
 * (config.json) by the supervisor of detached containers, which owns them from then on; and a
 * terminal attached to one that runs, through that supervisor.
 */
import { Command } from "@commander-js/extra-typings";
import { containerConfig, type ContainerState, findContainer } from "../container/state.ts";
import { isRunning, signalContainer, stopContainer, waitReleased } from "../container/lifecycle.ts";
import { ask, replied } from "../container/supervisor.ts";
import { streamAttached } from "../container/attach.ts";
import { EXIT_FAILURE, ExitCode, UserError } from "../base/errors.ts";
import { eachContainer, stopSeconds } from "./each.ts";
import { signalNumber } from "../base/signals.ts";

/** How long a previous owner may take to release a container before a start gives up. */
const RELEASE_TIMEOUT_MS = 15_000;

/**
 * A foreground run's container is removed when it ends, by the `run` that owns it: it cannot be
 * started again.
 */
function startable(state: ContainerState): void {
  if (!state.detached) {
    throw new UserError(
      `Container ${state.name} runs in the foreground of its "mini-docker run", which removes it when it ends: it cannot be started again`,
      EXIT_FAILURE,
    );
  }
}

/** Starts a stopped container through the supervisor (once its last owner has let it go). */
async function startOne(state: ContainerState): Promise<void> {
  startable(state);
  if (!(await waitReleased(state.id, RELEASE_TIMEOUT_MS))) {
    throw new UserError(`Container ${state.name} is still being stopped: try again`, EXIT_FAILURE);
  }
  const answer = await ask({ type: "start", id: state.id });
  closeQuietly(answer.conn);
  replied(answer.reply);
}

/**
 * Starts a container with this client attached (`start -a`): its output from its first byte,
 * and with -i our input. Returns its exit code.
 */
async function startAttached(state: ContainerState, stdin: boolean): Promise<number> {
  startable(state);
  if (!(await waitReleased(state.id, RELEASE_TIMEOUT_MS))) {
    throw new UserError(`Container ${state.name} is still being stopped: try again`, EXIT_FAILURE);
  }
  const config = containerConfig(state);
  const withInput = stdin && config.openStdin;
  const answer = await ask({ type: "start", id: state.id, attach: { stdin: withInput } });
  try {
    replied(answer.reply);
    return await streamAttached(answer.conn, answer.reader, answer.rest, {
      stdin: withInput,
      tty: config.tty,
      onSignal: config.tty ? undefined : proxySignal(state),
    });
  } finally {
    closeQuietly(answer.conn);
  }
}

/** Closes a connection that its reader may have closed already (at its end). */
function closeQuietly(conn: Deno.UnixConn): void {
  try {
    conn.close();
  } catch { /* closed */ }
}

/** Docker's --sig-proxy: a signal to this client goes to the container. */
function proxySignal(state: ContainerState) {
  return (signal: Deno.Signal) => {
    signalContainer(state, signalNumber(signal)!).catch(() => {});
  };
}

export function startCommand() {
  return new Command("start")
    .description("Start stopped or created containers (in the background, as run -d)")
    .argument("<container...>", "container names or ids (unique prefixes work)")
    .option("-a, --attach", "attach this terminal: the container's output, and its exit code")
    .option("-i, --interactive", "attach stdin too (a container created with -i)")
    .addHelpText(
      "after",
      `
Examples:
  mini-docker start web
  mini-docker start -a job                   wait for it, with its output and exit code
  mini-docker start -ai shell                a container created with -it`,
    )
    .action(async (refs, opts) => {
      if (opts.attach || opts.interactive) {
        if (refs.length > 1) {
          throw new UserError("You cannot start and attach multiple containers at once");
        }
        const state = findContainer(refs[0]!);
        if (isRunning(state)) {
          throw new UserError(
            `Container ${state.name} is already running: use "attach"`,
            EXIT_FAILURE,
          );
        }
        throw new ExitCode(await startAttached(state, opts.interactive === true));
      }
      await eachContainer(refs, async (ref) => {
        const state = findContainer(ref);
        // As Docker: starting a running container does nothing.
        if (!isRunning(state)) await startOne(state);
        console.log(ref);
      });
    });
}

export function restartCommand() {
  return new Command("restart")
    .description("Restart containers: stop (SIGTERM, then SIGKILL), then start")
    .argument("<container...>", "container names or ids (unique prefixes work)")
    .option("-t, --time <seconds>", "seconds to wait before killing", "10")
    .addHelpText(
      "after",
      `
Examples:
  mini-docker restart web
  mini-docker restart -t 2 web db`,
    )
    .action(async (refs, opts) => {
      const seconds = stopSeconds(opts.time);
      await eachContainer(refs, async (ref) => {
        const state = findContainer(ref);
        startable(state);
        await stopContainer(state, seconds);
        await startOne(findContainer(state.id));
        console.log(ref);
      });
    });
}

export function attachCommand() {
  return new Command("attach")
    .description("Attach this terminal to a running detached container: its output, and input")
    .argument("<container>", "container name or id (unique prefixes work)")
    .option("--no-stdin", "do not send this terminal's input to the container")
    .option("--sig-proxy <bool>", "send SIGINT and SIGTERM to the container (default true)")
    .addHelpText(
      "after",
      `
Output from now on (see "logs" for what came before); the exit code is the container's.
Ctrl-C stops the container, as Docker's (--sig-proxy=false leaves it running).

Examples:
  mini-docker attach web
  mini-docker attach --no-stdin --sig-proxy=false web`,
    )
    .action(async (ref, opts) => {
      const proxy = opts.sigProxy === undefined || opts.sigProxy === "true";
      if (opts.sigProxy !== undefined && !/^(true|false)$/.test(opts.sigProxy)) {
        throw new UserError(`Invalid --sig-proxy "${opts.sigProxy}": expected true or false`);
      }
      const state = findContainer(ref);
      if (!isRunning(state)) {
        throw new UserError(
          `You cannot attach to a stopped container ${state.name}: start it first`,
          EXIT_FAILURE,
        );
      }
      const config = containerConfig(state);
      if (config.tty && config.openStdin && opts.stdin !== false && !Deno.stdin.isTerminal()) {
        throw new UserError(
          "The input device is not a TTY: use --no-stdin, or run from a terminal",
        );
      }
      const withInput = opts.stdin !== false && config.openStdin;
      const answer = await ask({ type: "attach", id: state.id, stdin: withInput }, false);
      try {
        replied(answer.reply);
        const code = await streamAttached(answer.conn, answer.reader, answer.rest, {
          stdin: withInput,
          tty: config.tty,
          onSignal: proxy && !config.tty ? proxySignal(state) : undefined,
        });
        throw new ExitCode(code);
      } finally {
        closeQuietly(answer.conn);
      }
    });
}
