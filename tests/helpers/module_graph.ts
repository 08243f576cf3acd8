/**
 * Test helper: module graphs from `deno info --json`, reduced to what runs. Type-only imports are
 * erased at run time, and modules loaded with a computed specifier (base/lazy.ts) are not in the
 * graph at all. container/lazy_test.ts checks what a run loads with it.
 */

/** The part of `deno info --json` read here. */
export interface DenoInfo {
  roots: string[];
  modules: {
    specifier: string;
    size?: number;
    npmPackage?: string;
    dependencies?: { code?: { specifier: string } }[];
  }[];
  npmPackages?: Record<string, { name: string; version: string; dependencies?: string[] }>;
  /** e.g. "npm:pkg@1.0.0" -> "npm:/pkg@1.0.0", the name under which `modules` lists it. */
  redirects?: Record<string, string>;
}

/** `deno info --json` of `entry`, run by `deno` in `cwd` (whose deno.json resolves imports). */
export async function denoInfo(deno: string, entry: string, cwd: string): Promise<DenoInfo> {
  const out = await new Deno.Command(deno, {
    args: ["info", "--json", "--no-lock", entry],
    cwd,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`deno info ${entry}: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

/** The modules reachable from the roots through code imports. */
export function runningModules(info: DenoInfo): DenoInfo["modules"] {
  const byName = new Map(info.modules.map((m) => [m.specifier, m]));
  const reached = new Set<string>();
  for (const stack = [...info.roots]; stack.length > 0;) {
    const popped = stack.pop()!;
    const name = info.redirects?.[popped] ?? popped;
    if (reached.has(name)) continue;
    reached.add(name);
    for (const d of byName.get(name)?.dependencies ?? []) {
      if (d.code !== undefined) stack.push(d.code.specifier);
    }
  }
  return [...reached].map((name) => byName.get(name) ?? { specifier: name });
}
