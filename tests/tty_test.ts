/**
 * `-t`: a real pseudo-terminal inside the container, sized like ours at start and on every
 * resize, with our terminal's mode restored afterwards. Driven through tmux and script(1),
 * which give mini-docker a terminal as a person's would.
 */
import assert from "node:assert/strict";
import { REPO, TestEnv, waitFor, withDeadline } from "./helpers.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

function tmux(socket: string, ...args: string[]): string {
  const out = new Deno.Command("tmux", { args: ["-L", socket, ...args] }).outputSync();
  return new TextDecoder().decode(out.stdout);
}

Deno.test("run -it: an interactive shell on a terminal that follows resizes", opts, async () => {
  await using t = await TestEnv.create();
  const socket = `md-${crypto.randomUUID().slice(0, 8)}`;
  const env = Object.entries(t.env).map(([k, v]) => `${k}=${v}`).join(" ");
  const cmd =
    `cd ${t.cwd} && env ${env} ${Deno.execPath()} run -A --quiet ${REPO}/main.ts run -it /bin/sh`;
  tmux(socket, "new-session", "-d", "-x", "100", "-y", "30", cmd);
  try {
    const screen = () => tmux(socket, "capture-pane", "-p");
    await waitFor(() => screen().includes("/ #"), 20_000, "the shell prompt");
    tmux(socket, "send-keys", "stty size; echo $TERM", "Enter");
    await waitFor(() => screen().includes("30 100"), 10_000, "the initial size");
    assert.match(screen(), /^xterm$/m);
    tmux(socket, "resize-window", "-x", "80", "-y", "20");
    tmux(socket, "send-keys", "clear; stty size", "Enter");
    await waitFor(() => screen().includes("20 80"), 10_000, "the new size");
    tmux(socket, "send-keys", "exit 4", "Enter");
    await waitFor(() => t.containerIds().length === 0, 10_000, "the container to end");
  } finally {
    tmux(socket, "kill-server");
  }
});

Deno.test(
  "run -it under script(1): input reaches the container, the terminal mode is restored",
  opts,
  async () => {
    await using t = await TestEnv.create();
    const inner =
      `stty rows 33 cols 111; ${Deno.execPath()} run -A --quiet ${REPO}/main.ts run -it /bin/sh -c 'stty size; tty; read x; echo got $x; exit 3'; echo "exit=$?"; stty -a | grep -o -- '-*icanon'`;
    const child = new Deno.Command("script", {
      args: ["-qec", inner, "/dev/null"],
      cwd: t.cwd,
      env: t.env,
      stdin: "piped",
      stdout: "piped",
    }).spawn();
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode("hello\n"));
    await w.close();
    // script(1) answers the end of its input with the terminal's VEOF character, which is NUL
    // while mini-docker keeps the terminal raw: when that comes before the container has read
    // its line (a slow machine), the container's terminal echoes it as "^@". Not input of ours.
    const output = await withDeadline(child, "script(1) running mini-docker", () => child.output());
    const out = new TextDecoder().decode(output.stdout).replaceAll("\r", "")
      .replaceAll("^@", "");
    assert.match(out, /^33 111$/m);
    // The terminal comes from the container's own devpts, so its name resolves there.
    assert.match(out, /^\/dev\/pts\/0$/m);
    assert.match(out, /^got hello$/m);
    assert.match(out, /^exit=3$/m);
    assert.match(out, /^icanon$/m, "canonical mode is back after the container");
  },
);

Deno.test("-it without a terminal is refused; -t alone works without one", opts, async () => {
  await using t = await TestEnv.create();
  const r = await t.run(["run", "-it", "/bin/true"]);
  assert.equal(r.code, 125);
  assert.match(r.stderr, /The input device is not a TTY/);
  const tOnly = await t.run(["run", "-t", "/bin/sh", "-c", "test -t 1 && echo terminal"]);
  assert.equal(tOnly.code, 0, tOnly.stderr);
  assert.equal(tOnly.stdout.replaceAll("\r", ""), "terminal\n");
});

/**
 * `mini-docker run ARGS` on a terminal of its own (script(1)); once the output matches each
 * step's pattern, SIGINT goes to mini-docker alone (`signal`: as from `kill -INT`, not to the
 * container as a Ctrl-C would), or `keys` are typed. Returns what the terminal showed, and the
 * exit code.
 */
async function typeAfter(
  t: TestEnv,
  args: string[],
  steps: { after: RegExp; keys?: string; signal?: Deno.Signal }[],
): Promise<{ code: number; screen: string }> {
  // `exec`: script(1) runs the line with $SHELL -c, sh when SHELL is unset (as under CI), and a
  // shell that stays as mini-docker's parent would take the SIGINT meant for mini-docker.
  const line = "exec " +
    [Deno.execPath(), "run", "-A", "--quiet", `${REPO}/main.ts`, "run", ...args]
      .map((a) => `'${a.replaceAll("'", `'\\''`)}'`).join(" ");
  const child = new Deno.Command("script", {
    args: ["-qfec", line, "/dev/null"],
    cwd: t.cwd,
    env: t.env,
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let screen = "";
  return await withDeadline(child, `script(1) running ${line}; the terminal so far`, async () => {
    for (const step of steps) {
      while (!step.after.test(screen)) {
        const { value, done } = await reader.read();
        if (done) {
          throw new Error(`the terminal ended before ${step.after}: ${JSON.stringify(screen)}`);
        }
        screen += value;
      }
      if (step.keys !== undefined) await writer.write(new TextEncoder().encode(step.keys));
      if (step.signal !== undefined) {
        // script's child is mini-docker (the shell that ran the line exec'd it).
        const children = (pid: number) =>
          [...Deno.readDirSync(`/proc/${pid}/task`)].flatMap((task) =>
            Deno.readTextFileSync(`/proc/${pid}/task/${task.name}/children`).trim().split(" ")
          ).filter((p) => p !== "").map(Number);
        const md = children(child.pid).find((p) =>
          Deno.readTextFileSync(`/proc/${p}/cmdline`).includes("main.ts")
        );
        assert.ok(md !== undefined, "mini-docker's process");
        Deno.kill(md, step.signal);
      }
    }
    for (let r = await reader.read(); !r.done; r = await reader.read()) screen += r.value;
    await writer.close().catch(() => {});
    return { code: (await child.status).code, screen: screen.replaceAll("\r", "") };
  }, 60_000).catch((e) => {
    throw new Error(`${e.message}: ${JSON.stringify(screen)}`);
  });
}

Deno.test(
  "Ctrl-C: the hint to press it again is for a container that is still running",
  opts,
  async () => {
    await using t = await TestEnv.create();
    const hint = /press Ctrl-C again to kill the container/;
    // A shell that ends at the first SIGINT that mini-docker forwards (a Ctrl-C reaches the
    // container too; `kill -INT` mini-docker alone): no hint after it.
    for (const step of [{ signal: "SIGINT" as const }, { keys: "\x03" }]) {
      const quick = await typeAfter(t, [
        "/bin/sh",
        "-c",
        "trap 'exit 3' INT; echo ready; while :; do sleep 0.1; done",
      ], [{ after: /ready/, ...step }]);
      assert.equal(quick.code, 3, quick.screen);
      assert.doesNotMatch(quick.screen, hint);
    }
    // A container that ignores it (its shell and, by inheritance, its sleeps): the hint comes,
    // and a second Ctrl-C kills it.
    const started = Date.now();
    const stubborn = await typeAfter(t, [
      "/bin/sh",
      "-c",
      "trap '' INT; echo ready; while :; do sleep 0.2; done",
    ], [
      { after: /ready/, keys: "\x03" },
      { after: hint, keys: "\x03" },
    ]);
    assert.equal(stubborn.code, 137, stubborn.screen);
    assert.match(
      stubborn.screen,
      /^mini-docker: forwarded SIGINT; press Ctrl-C again to kill the container$/m,
    );
    assert.ok(Date.now() - started < 9_000, "killed by the second Ctrl-C, not the grace period");
  },
);
