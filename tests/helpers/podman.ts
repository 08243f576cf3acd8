/**
 * Test helper: Podman as a peer, in a root and run root of its own under a test's directory (vfs
 * storage, cgroupfs, no events), so it touches nothing of the host's containers or images.
 * Podman cannot run containers on the test machines (its default RLIMIT_NOFILE needs
 * CAP_SYS_RESOURCE, which root lacks there): the tests use it to create, inspect, load, save,
 * import and export.
 */

/** Whether Debian's podman is installed (tests/setup installs it). */
export const HAVE_PODMAN = (() => {
  try {
    return Deno.statSync("/usr/bin/podman").isFile;
  } catch {
    return false;
  }
})();

/** What one podman command gave: its code, stdout as bytes, and stderr. */
export interface PodmanOutput {
  code: number;
  bytes: Uint8Array;
  stdout: string;
  stderr: string;
}

/** A podman of its own in `dir`: call it with podman's arguments (and bytes for its stdin). */
export function podmanIn(
  dir: string,
): (args: string[], stdin?: Uint8Array) => Promise<PodmanOutput> {
  return async (args, stdin) => {
    const child = new Deno.Command("podman", {
      args: [
        "--root",
        `${dir}/root`,
        "--runroot",
        `${dir}/run`,
        "--cgroup-manager",
        "cgroupfs",
        "--events-backend",
        "none",
        "--network-backend",
        "netavark",
        "--storage-driver",
        "vfs",
        ...args,
      ],
      stdin: stdin === undefined ? "null" : "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    if (stdin !== undefined) {
      const w = child.stdin.getWriter();
      await w.write(stdin);
      await w.close();
    }
    const out = await child.output();
    const dec = new TextDecoder();
    return {
      code: out.code,
      bytes: out.stdout,
      stdout: dec.decode(out.stdout),
      stderr: dec.decode(out.stderr),
    };
  };
}

/** Removes what a podman of `dir` made (its containers, images, storage), then `dir`. */
export async function resetPodman(dir: string): Promise<void> {
  await podmanIn(dir)(["system", "reset", "-f"]).catch(() => {});
  await Deno.remove(dir, { recursive: true }).catch(() => {});
}
