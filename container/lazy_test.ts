import assert from "node:assert/strict";
import { denoInfo, runningModules } from "../tests/helpers/module_graph.ts";

const repo = new URL("../", import.meta.url);

/** Every .ts file of the program (not tests, benchmarks or the toolchain). */
function* sources(dir = repo): Generator<URL> {
  for (const entry of Deno.readDirSync(dir)) {
    const url = new URL(entry.name + (entry.isDirectory ? "/" : ""), dir);
    if (entry.isDirectory) {
      if (["toolchain", "tests", "bench", "node_modules", "dist"].includes(entry.name)) continue;
      if (entry.name.startsWith(".")) continue;
      yield* sources(url);
    } else if (entry.name.endsWith(".ts") && !entry.name.endsWith("_test.ts")) {
      yield url;
    }
  }
}

Deno.test("every module loaded lazily is in deno compile's --include list", () => {
  const loaded = new Set<string>();
  for (const file of sources()) {
    const text = Deno.readTextFileSync(file);
    for (const m of text.matchAll(/\b(?:lazy|load)<[^>]*>\(\s*"([^"]+)"/g)) {
      loaded.add(new URL(m[1]!, file).pathname.slice(repo.pathname.length));
    }
    // A Worker's module, and data files read next to a module, are invisible to deno compile too.
    for (const m of text.matchAll(/new URL\(\s*"(\.[^"]+\.(?:ts|json))",\s*import\.meta\.url/g)) {
      const path = new URL(m[1]!, file).pathname.slice(repo.pathname.length);
      if (path !== "main.ts") loaded.add(path); // the entry itself (a stage started again)
    }
  }
  assert.ok(loaded.has("cmd/program.ts"), `found only ${[...loaded].join(", ")}`);
  const task: string = JSON.parse(Deno.readTextFileSync(new URL("deno.json", repo))).tasks.compile;
  const included = new Set([...task.matchAll(/--include (\S+)/g)].map((m) => m[1]!));
  assert.deepEqual([...loaded].sort(), [...included].sort());
});

/** The modules that run when `entry` is loaded. */
async function loaded(entry: URL): Promise<string[]> {
  const info = await denoInfo(Deno.execPath(), entry.pathname, repo.pathname);
  return runningModules(info).map((m) => m.specifier);
}

Deno.test("a run loads neither npm packages nor node: modules (Deno's Node layer costs ~30 ms)", async () => {
  const entries = ["main.ts", "container/thread.ts", "cmd/run_action.ts", "container/start.ts"];
  for (const entry of entries) {
    const modules = await loaded(new URL(entry, repo));
    assert.ok(modules.length > 1, entry);
    assert.deepEqual(modules.filter((m) => !m.startsWith("file:")), [], entry);
  }
  // The other commands do load commander: the check above can fail.
  const program = await loaded(new URL("cmd/program.ts", repo));
  assert.ok(program.some((m) => m.startsWith("npm:")), "cmd/program.ts");
});
