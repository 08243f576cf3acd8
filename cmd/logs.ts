/** `mini-docker logs`: a container's output, from its log file. */
import { Command } from "@commander-js/extra-typings";
import { findContainer, logPath, readState } from "../container/state.ts";
import { parseLog, toLines } from "../container/logs.ts";
import { UserError } from "../base/errors.ts";

const encoder = new TextEncoder();

export function logsCommand() {
  return new Command("logs")
    .description("Show a detached container's output")
    .argument("<container>", "container name or id (unique prefixes work)")
    .option("-f, --follow", "follow the output until the container exits")
    .option("-n, --tail <lines>", 'number of lines from the end, or "all"', "all")
    .option("-t, --timestamps", "show the time of each line")
    .addHelpText(
      "after",
      `
Examples:
  mini-docker logs web
  mini-docker logs -f --tail 10 -t web`,
    )
    .action(async (ref, opts) => {
      const tail = opts.tail === "all" ? Infinity : Number(opts.tail);
      if (opts.tail !== "all" && (!/^\d+$/.test(opts.tail))) {
        throw new UserError(`Invalid --tail "${opts.tail}": expected a number of lines or "all"`);
      }
      const state = findContainer(ref);
      const path = logPath(state.id);
      let file: Deno.FsFile;
      try {
        file = await Deno.open(path);
      } catch {
        if (!state.detached) {
          throw new UserError(
            `Container ${state.name} has no log: only detached containers (run -d) are logged`,
          );
        }
        return;
      }
      using _ = file;
      const decoder = new TextDecoder();
      let pending = "";
      const buf = new Uint8Array(65536);
      const emit = (text: string, first: boolean) => {
        const { records, rest } = parseLog(pending + text);
        pending = rest;
        let lines = toLines(records);
        if (first && Number.isFinite(tail)) lines = lines.slice(Math.max(0, lines.length - tail));
        for (const l of lines) {
          const out = (opts.timestamps ? `${l.time} ` : "") + l.text + (l.complete ? "\n" : "");
          (l.stream === "stderr" ? Deno.stderr : Deno.stdout).writeSync(encoder.encode(out));
        }
      };
      // Everything written so far, then (with -f) what comes until the container exits.
      let all = "";
      for (let n = await file.read(buf); n !== null; n = await file.read(buf)) {
        all += decoder.decode(buf.subarray(0, n), { stream: true });
      }
      emit(all, true);
      if (!opts.follow) return;
      for (;;) {
        const n = await file.read(buf);
        if (n !== null) {
          emit(decoder.decode(buf.subarray(0, n), { stream: true }), false);
          continue;
        }
        const now = readState(state.id);
        if (now === undefined || now.status === "exited") {
          // The last output may have landed after our last read.
          for (let m = await file.read(buf); m !== null; m = await file.read(buf)) {
            emit(decoder.decode(buf.subarray(0, m), { stream: true }), false);
          }
          return;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    });
}
