/**
 * The escape probes (tests/probes/escape.c), compiled static from source by the test that uses
 * them (gcc and libc6-dev, installed by tests/setup) and cached by the source's hash: no binary
 * is committed. A busybox root filesystem has no C library, so static it is.
 */
import { createHash } from "node:crypto";

const SOURCE = new URL("../probes/escape.c", import.meta.url).pathname;
const CACHE = new URL("../.cache/probes", import.meta.url).pathname;

/** The path of the compiled probe. */
export async function escapeProbe(): Promise<string> {
  const source = Deno.readTextFileSync(SOURCE);
  const hash = createHash("sha256").update(source).digest("hex").slice(0, 16);
  const binary = `${CACHE}/escape-${hash}`;
  try {
    Deno.statSync(binary);
    return binary;
  } catch { /* build it */ }
  Deno.mkdirSync(CACHE, { recursive: true });
  const tmp = `${binary}.${crypto.randomUUID()}`;
  const out = await new Deno.Command("gcc", {
    args: ["-static", "-O2", "-o", tmp, SOURCE],
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`cannot build the escape probe: ${new TextDecoder().decode(out.stderr)}`);
  }
  Deno.renameSync(tmp, binary);
  return binary;
}

/** Parses the probe's "<name> <result>" lines. */
export function probeResults(stdout: string): Record<string, string> {
  return Object.fromEntries(
    stdout.trim().split("\n").filter((l) => l !== "").map((l) => {
      const at = l.indexOf(" ");
      return [l.slice(0, at), l.slice(at + 1)];
    }),
  );
}
