import assert from "node:assert/strict";
import { optionNames, parseRunArgs, RUN_OPTIONS } from "./run_args.ts";
import { runCommand } from "./run.ts";

/** What commander makes of `args` ("run", ...): the command and options, or its error. */
function commanderParse(args: string[]): { command: string[]; opts: unknown } | { error: string } {
  let seen: { command: string[]; opts: unknown } | undefined;
  const cmd = runCommand()
    .exitOverride()
    .configureOutput({ writeErr: () => {}, writeOut: () => {} });
  cmd.action((command, opts) => {
    seen = { command, opts: { ...opts } };
  });
  try {
    cmd.parse(args.slice(1), { from: "user" });
  } catch (err) {
    return { error: (err as Error).message };
  }
  return seen ?? { error: "no action" };
}

/** Asserts that the fast parser agrees with commander, or gives up; returns whether it read `args`. */
function agrees(args: string[]): boolean {
  const fast = parseRunArgs(args);
  if (fast === undefined) return false;
  const slow = commanderParse(args);
  assert.ok(
    !("error" in slow),
    `commander refuses ${JSON.stringify(args)}: ${"error" in slow && slow.error}`,
  );
  assert.deepEqual(fast, slow, JSON.stringify(args));
  return true;
}

Deno.test("the fast parser reads the original's command lines and Docker's usual ones as commander does", () => {
  const lines = [
    ["run", "/bin/sh"],
    ["run", "--memory", "100M", "/bin/sh"],
    ["run", "--cpus", "0.5", "/bin/sh"],
    ["run", "--hostname", "mon-conteneur", "/bin/sh"],
    ["run", "--memory", "200M", "--cpus", "1.0", "--hostname", "test", "/bin/ls", "-la"],
    ["run", "/bin/ls", "-la", "/"],
    ["run", "--memory", "50M", "/bin/sh", "-c", "echo 'Test mémoire limitée'"],
    ["run", "--hostname", "mon-conteneur", "/bin/hostname"],
    ["run", "-it", "--rm", "-e", "A=1", "-e", "B", "--env-file", "f", "-w", "/tmp", "/bin/sh"],
    ["run", "-d", "--name", "web", "-m", "64m", "--pids-limit", "-1", "/bin/sleep", "9"],
    ["run", "--name=-d", "--memory-swap=-1", "--network=none", "/bin/true", "-d", "--", "x"],
    ["run", "-u", "1000:1000", "--image", "alpine:3.18", "--entrypoint", "/bin/echo", "hi"],
    ["run", "--rootfs", "./r", "--init", "--stats-report", "-", "x"],
    ["run", "-dit", "/bin/sh"],
    ["run", "-v", "/srv:/data:ro", "--volume=data:/d", "--mount", "type=tmpfs,dst=/t", "/bin/sh"],
    ["run", "--tmpfs", "/run:size=1m", "--read-only", "--volumes-from", "db:ro", "/bin/true"],
    ["run", "--hostname="],
    ["run"],
  ];
  for (const args of lines) assert.ok(agrees(args), `not read: ${JSON.stringify(args)}`);
});

Deno.test("the fast parser leaves help, errors and unusual spellings to commander", () => {
  const lines = [
    ["run", "--help"],
    ["run", "-h", "/bin/sh"],
    ["run", "--no-such-option", "/bin/sh"],
    ["run", "--memory"],
    ["run", "-m100m", "/bin/sh"],
    ["run", "-eA=1", "/bin/sh"],
    ["run", "-im", "64m", "/bin/sh"],
    ["run", "--rm=yes", "/bin/sh"],
    ["run", "--", "/bin/sh"],
    ["--root", "/tmp/x", "run", "/bin/sh"],
    ["ps"],
  ];
  for (const args of lines) assert.equal(parseRunArgs(args), undefined, JSON.stringify(args));
});

Deno.test("the fast parser agrees with commander on 3000 generated command lines", () => {
  // A small deterministic generator (xorshift): every run tests the same lines.
  let seed = 0x2545f491;
  const next = (n: number) => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  const names = RUN_OPTIONS.flatMap((o) => {
    const { short, long } = optionNames(o);
    return short === undefined ? [long] : [short, long];
  });
  const words = [
    ...names,
    "-it",
    "-dt",
    "-x",
    "--bogus",
    "--",
    "-",
    "/bin/sh",
    "-c",
    "64m",
    "-1",
    "A=1",
    "=",
    "",
    "--memory=64m",
    "--env=B=2",
    "--rm=1",
    "-m64m",
  ];
  let read = 0;
  for (let i = 0; i < 3000; i++) {
    const args = ["run"];
    for (let n = next(7); n > 0; n--) args.push(words[next(words.length)]!);
    if (agrees(args)) read++;
  }
  // Not a tautology: a good share of the generated lines take the fast path.
  assert.ok(read > 300, `only ${read} of 3000 lines read by the fast parser`);
});
