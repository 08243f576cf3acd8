/**
 * The programs the bench compares mini-docker with, installed from Debian's packages when they
 * are missing (`apt-get update` once, then one `apt-get install`), and their versions.
 */

/** Debian package -> the program the bench runs from it. */
export const PEERS: Readonly<Record<string, string>> = {
  runc: "runc",
  crun: "crun",
  podman: "podman",
  bubblewrap: "bwrap",
  hyperfine: "hyperfine",
  "busybox-static": "busybox",
  // GNU time measures peak RSS without counting the bench's own memory (see startup.ts).
  time: "/usr/bin/time",
  // unshare, mount (both essential on Debian, listed for other derivatives).
  "util-linux": "unshare",
  mount: "mount",
};

async function output(program: string, args: string[]): Promise<Deno.CommandOutput> {
  return await new Deno.Command(program, { args, stdout: "piped", stderr: "piped" }).output();
}

async function installed(pkg: string): Promise<boolean> {
  try {
    const out = await output("dpkg-query", ["-W", "-f=${Status}", pkg]);
    return out.success && new TextDecoder().decode(out.stdout).includes("install ok installed");
  } catch {
    return false;
  }
}

/** Runs apt-get; its output is progress, so it goes to stderr (stdout is the report's). */
async function aptGet(args: string[]): Promise<void> {
  const child = new Deno.Command("apt-get", {
    args,
    env: { DEBIAN_FRONTEND: "noninteractive" },
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  await child.stdout.pipeTo(Deno.stderr.writable, { preventClose: true });
  const status = await child.status;
  if (!status.success) throw new Error(`"apt-get ${args.join(" ")}" failed (${status.code})`);
}

/** Installs the missing peers. Returns the packages it installed. */
export async function installPeers(log: (line: string) => void): Promise<string[]> {
  const missing: string[] = [];
  for (const pkg of Object.keys(PEERS)) if (!await installed(pkg)) missing.push(pkg);
  if (missing.length === 0) return [];
  try {
    Deno.statSync("/usr/bin/apt-get");
  } catch {
    throw new Error(`Missing programs and no apt-get to install them: ${missing.join(", ")}`);
  }
  log(`installing ${missing.join(" ")} (apt-get)`);
  await aptGet(["update", "-qq"]);
  await aptGet(["install", "-y", "-qq", ...missing]);
  return missing;
}

/** First line of `program args` (stdout or stderr), for the report. */
export async function versionOf(program: string, args: string[]): Promise<string> {
  try {
    const out = await output(program, args);
    const dec = new TextDecoder();
    const text = dec.decode(out.stdout).trim() || dec.decode(out.stderr).trim();
    return text.split("\n")[0] ?? "";
  } catch (err) {
    return `unavailable: ${(err as Error).message}`;
  }
}

/** The versions of everything measured. */
export async function versions(deno: string): Promise<Record<string, string>> {
  return {
    deno: await versionOf(deno, ["--version"]),
    runc: await versionOf("runc", ["--version"]),
    crun: await versionOf("crun", ["--version"]),
    podman: await versionOf("podman", ["--version"]),
    bwrap: await versionOf("bwrap", ["--version"]),
    unshare: await versionOf("unshare", ["--version"]),
    busybox: (await versionOf("busybox", ["--help"])).replace(/ multi-call binary\.?$/, ""),
  };
}
