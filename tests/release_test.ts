/**
 * The release workflow (.github/workflows/release.yml) cannot run here (it is the public forge's
 * CI), so what can be checked is: it is valid YAML (python3's YAML parser), it runs on version
 * tags, compiles for both Linux targets with the modules that deno.json's compile task includes
 * (its own extraction, run here), and publishes both binaries with their SHA-256 sums.
 */
import assert from "node:assert/strict";
import { REPO } from "./helpers.ts";

const WORKFLOW = `${REPO}/.github/workflows/release.yml`;

/** The workflow as JSON, from python3's YAML parser (a parse error fails the test). */
async function parsed(): Promise<Record<string, unknown>> {
  const out = await new Deno.Command("python3", {
    args: [
      "-c",
      "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
      WORKFLOW,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

Deno.test("release workflow: valid YAML; tags; both targets; binaries and SHA-256 sums", async () => {
  const doc = await parsed();
  assert.deepEqual(doc.on, { push: { tags: ["v[0-9]+.[0-9]+.[0-9]+*"] } });
  // deno-lint-ignore no-explicit-any
  const steps: { run?: string; uses?: string }[] = (doc.jobs as any).release.steps;
  const script = steps.map((s) => s.run ?? "").join("\n");
  assert.match(script, /for arch in x86_64 aarch64; do/);
  assert.match(script, /compile -A \$includes --target "\$arch-unknown-linux-gnu"/);
  assert.match(script, /sha256sum mini-docker-linux-x86_64 mini-docker-linux-aarch64 > SHA256SUMS/);
  assert.match(
    script,
    /gh release create "\$GITHUB_REF_NAME"[^]*dist\/mini-docker-linux-x86_64 dist\/mini-docker-linux-aarch64 dist\/SHA256SUMS/,
  );
  assert.match(script, /s\/\^export const VERSION = \.\*\//);
  assert.match(
    Deno.readTextFileSync(`${REPO}/base/version.ts`),
    /^export const VERSION = "[^"]+";$/m,
  );
  // The workflow's own extraction of the compile task's modules gives them all.
  const line = script.split("\n").find((l) => l.includes("includes=$("))!;
  const out = await new Deno.Command("sh", {
    args: ["-c", `${line.trim()}; printf '%s' "$includes"`],
    cwd: REPO,
    stdout: "piped",
  }).output();
  const task: string = JSON.parse(Deno.readTextFileSync(`${REPO}/deno.json`)).tasks.compile;
  const expected = [...task.matchAll(/--include \S+/g)].map((m) => m[0]).join(" ");
  assert.ok(expected.length > 0);
  assert.equal(new TextDecoder().decode(out.stdout).trim(), expected);
});
