/**
 * mini-docker started again as one of its own hidden stages. Only one is left: the supervisor of
 * detached containers (`__supervisor`). Containers themselves never run mini-docker's code.
 */

/** The hidden first argument that turns mini-docker into the supervisor of detached containers. */
export const SUPERVISOR_ARG = "__supervisor";

/** The command line that starts one of mini-docker's own hidden stages. */
export function selfCommand(stage: string): { exe: string; args: string[] } {
  const exe = Deno.execPath();
  // A compiled mini-docker is itself; from source, Deno runs main.ts again.
  if (!/(^|\/)deno$/.test(exe)) return { exe, args: [stage] };
  const main = new URL("../main.ts", import.meta.url).pathname;
  return { exe, args: ["run", "-A", "--quiet", "--no-prompt", "--cached-only", main, stage] };
}
