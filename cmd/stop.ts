/** `mini-docker stop` and `mini-docker kill`. */
import { Command } from "@commander-js/extra-typings";
import { findContainer } from "../container/state.ts";
import { signalContainer, stopContainer } from "../container/lifecycle.ts";
import { UserError } from "../base/errors.ts";
import { signalNumber } from "../base/signals.ts";
import { eachContainer, stopSeconds } from "./each.ts";

export function stopCommand() {
  return new Command("stop")
    .description("Stop containers: SIGTERM, then SIGKILL after a timeout")
    .argument("<container...>", "container names or ids (unique prefixes work)")
    .option("-t, --time <seconds>", "seconds to wait before killing", "10")
    .addHelpText(
      "after",
      `
Examples:
  mini-docker stop web
  mini-docker stop -t 2 web db`,
    )
    .action(async (refs, opts) => {
      const seconds = stopSeconds(opts.time);
      await eachContainer(refs, async (ref) => {
        await stopContainer(findContainer(ref), seconds);
        console.log(ref);
      });
    });
}

export function killCommand() {
  return new Command("kill")
    .description("Send a signal to containers (default SIGKILL)")
    .argument("<container...>", "container names or ids (unique prefixes work)")
    .option("-s, --signal <signal>", "signal name or number (RTMIN+N and RTMAX-N too)", "KILL")
    .addHelpText(
      "after",
      `
Examples:
  mini-docker kill web
  mini-docker kill -s USR1 web
  mini-docker kill -s RTMIN+3 web`,
    )
    .action(async (refs, opts) => {
      const sig = signalNumber(opts.signal);
      if (sig === undefined) {
        throw new UserError(
          `Invalid signal "${opts.signal}": use a name such as TERM, USR1 or RTMIN+1, or a number from 1 to 64`,
        );
      }
      await eachContainer(refs, async (ref) => {
        await signalContainer(findContainer(ref), sig);
        console.log(ref);
      });
    });
}
