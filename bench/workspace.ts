/**
 * Everything the bench creates, in one temp directory, and its removal. One busybox root
 * filesystem built from the host serves every tool: mini-docker and unshare/bwrap use it
 * directly, runc and crun through OCI bundles whose config.json comes from `runc spec`, podman
 * through an image imported from a tarball of it. Cgroups live under one bench-specific parent
 * (`mdbench-<random>`), state and storage under the temp directory: real containers are never
 * touched, and `dispose` removes processes, mounts, cgroups and files whatever happened.
 */
import type { LinuxSeccomp } from "../base/spec.ts";
import { buildBusyboxRootfs } from "../rootfs/prepare.ts";
import { denoPath, REPO } from "./tools.ts";

/** Where cgroupfs lives. */
const CGROUP_ROOT = "/sys/fs/cgroup";
/** crun 1.8.1 refuses a hybrid host whose cgroup2 mount lists a controller (hugetlb here). */
const UNIFIED_CONTROLLERS = `${CGROUP_ROOT}/unified/cgroup.controllers`;

/** The namespaces every tool creates (no network namespace: mini-docker gets `--network host`). */
export const NAMESPACES = ["pid", "mount", "uts", "ipc"] as const;

/** What a container of a bundle runs, and under which limits. */
export interface BundleOptions {
  args: string[];
  /** Memory limit in bytes. */
  memory?: number;
  /** CPU quota in CPUs (0.5 = 50 ms per 100 ms). */
  cpus?: number;
  /**
   * Docker's confinement instead of `runc spec`'s: these capabilities as bounding, effective and
   * permitted set, this seccomp filter (an OCI LinuxSeccomp), and no no_new_privs (Docker's
   * default, and mini-docker's).
   */
  docker?: { capabilities: readonly string[]; seccomp: LinuxSeccomp };
}

/** The bench's temp world. */
export class Workspace implements AsyncDisposable {
  /** The temp directory holding everything. */
  readonly dir: string;
  /** Parent cgroup (relative) of every cgroup the bench creates. */
  readonly cgroupTag: string;
  readonly rootfs: string;
  /** An empty file, bind-mounted over UNIFIED_CONTROLLERS in crun's private mount namespace. */
  readonly empty: string;
  /** Whether crun (and podman, which runs crun) needs that bind mount on this host. */
  readonly crunNeedsWrap: boolean;
  readonly runcRoot: string;
  readonly crunRoot: string;
  /** The environment of mini-docker: private run root, data root and cgroup parent. */
  readonly mdEnv: Record<string, string>;
  /** podman's global flags: storage, run root, tmp dir, cgroupfs, file events. */
  readonly podmanFlags: string[];
  readonly podmanImage = "localhost/mdbench:latest";
  #template: Record<string, unknown> | undefined;
  #podmanUsed = false;
  #log: (line: string) => void;

  private constructor(dir: string, log: (line: string) => void) {
    this.dir = dir;
    this.#log = log;
    this.cgroupTag = `mdbench-${dir.slice(-6).replace(/[^A-Za-z0-9]/g, "x")}`;
    this.rootfs = `${dir}/rootfs`;
    this.empty = `${dir}/empty`;
    this.runcRoot = `${dir}/runc`;
    this.crunRoot = `${dir}/crun`;
    this.crunNeedsWrap = controllersListed();
    this.mdEnv = {
      MINI_DOCKER_ROOT: `${dir}/md/lib`,
      MINI_DOCKER_RUNROOT: `${dir}/md/run`,
      MINI_DOCKER_CGROUP_PARENT: `${this.cgroupTag}/md`,
      // The bridge row's network: a bridge and addresses of the bench's own.
      MINI_DOCKER_BRIDGE: `mdb${dir.slice(-6).replace(/[^A-Za-z0-9]/g, "x")}`,
      MINI_DOCKER_SUBNET_POOL: "base=10.231.0.0/16,size=24",
    };
    this.podmanFlags = [
      "--root",
      `${dir}/podman/root`,
      "--runroot",
      `${dir}/podman/run`,
      "--tmpdir",
      `${dir}/podman/tmp`,
      "--cgroup-manager",
      "cgroupfs",
      "--events-backend",
      "file",
    ];
  }

  /** Creates the temp directory and the busybox root filesystem. */
  static async create(log: (line: string) => void): Promise<Workspace> {
    // A short path: mini-docker's sync socket path must fit in 107 bytes.
    const dir = await Deno.makeTempDir({ prefix: "mdbench-" });
    const ws = new Workspace(dir, log);
    try {
      await buildBusyboxRootfs(ws.rootfs);
      Deno.writeFileSync(ws.empty, new Uint8Array());
      for (const d of [ws.runcRoot, ws.crunRoot, `${dir}/bundles`, `${dir}/logs`]) {
        Deno.mkdirSync(d, { recursive: true });
      }
    } catch (err) {
      await ws[Symbol.asyncDispose]();
      throw err;
    }
    return ws;
  }

  /**
   * `argv` run so that crun accepts this host: in a private mount namespace (unshare -m, whose
   * mounts are private: nothing changes on the host) with an empty file over the cgroup2
   * controller list. Unchanged where crun needs no help.
   */
  wrapForCrun(argv: string[]): string[] {
    if (!this.crunNeedsWrap) return argv;
    return [
      "unshare",
      "-m",
      "sh",
      "-c",
      `mount --bind ${this.empty} ${UNIFIED_CONTROLLERS} && exec "$@"`,
      "sh",
      ...argv,
    ];
  }

  /** The base config.json, from `runc spec`, generated once. */
  async #base(): Promise<Record<string, unknown>> {
    if (this.#template !== undefined) return this.#template;
    const dir = `${this.dir}/bundles/template`;
    Deno.mkdirSync(dir, { recursive: true });
    const out = await new Deno.Command("runc", { args: ["spec", "--bundle", dir] }).output();
    if (!out.success) {
      throw new Error(`"runc spec" failed: ${new TextDecoder().decode(out.stderr)}`);
    }
    this.#template = JSON.parse(Deno.readTextFileSync(`${dir}/config.json`));
    return this.#template!;
  }

  /**
   * Writes an OCI bundle (just config.json: the root is the shared rootfs, by absolute path)
   * for one container whose cgroup is `<tag>/<id>`. Returns the bundle directory.
   */
  async bundle(id: string, opts: BundleOptions): Promise<string> {
    // deno-lint-ignore no-explicit-any
    const config = structuredClone(await this.#base()) as any;
    config.process.terminal = false;
    config.process.args = opts.args;
    config.root = { path: this.rootfs, readonly: false };
    config.hostname = id.slice(0, 63);
    config.linux.namespaces = NAMESPACES.map((type) => ({ type }));
    config.linux.cgroupsPath = `/${this.cgroupTag}/${id}`;
    const resources = config.linux.resources ?? {};
    if (opts.memory !== undefined) resources.memory = { limit: opts.memory };
    if (opts.cpus !== undefined) {
      resources.cpu = { quota: Math.round(opts.cpus * 100_000), period: 100_000 };
    }
    config.linux.resources = resources;
    if (opts.docker !== undefined) {
      const caps = [...opts.docker.capabilities];
      config.process.capabilities = { bounding: caps, effective: caps, permitted: caps };
      config.process.noNewPrivileges = false;
      config.linux.seccomp = opts.docker.seccomp;
    }
    const dir = `${this.dir}/bundles/${id}`;
    Deno.mkdirSync(dir, { recursive: true });
    Deno.writeTextFileSync(`${dir}/config.json`, JSON.stringify(config, null, 1));
    return dir;
  }

  /** Imports the rootfs into podman's temp storage as `podmanImage`. */
  async importPodmanImage(): Promise<void> {
    this.#podmanUsed = true;
    const tar = `${this.dir}/rootfs.tar`;
    await run("tar", ["-C", this.rootfs, "-cf", tar, "."]);
    await run("podman", [...this.podmanFlags, "import", "-q", tar, this.podmanImage]);
    Deno.removeSync(tar);
  }

  /** Removes everything: processes, mounts, cgroups, podman's storage, the temp directory. */
  async [Symbol.asyncDispose](): Promise<void> {
    const problems: string[] = [];
    killCgroups(this.cgroupTag);
    // The bridge row's network (bridge, NAT rules, addresses): mini-docker's own removal first.
    await run(denoPath(), ["run", "-A", "--quiet", `${REPO}/main.ts`, "network", "rm", "bridge"], {
      env: this.mdEnv,
    }).catch(() => {/* never made */});
    let resetFailure: string | undefined;
    if (this.#podmanUsed) {
      // podman's own removal first (containers, layers, its mounts), then whatever is left. It
      // can trip over its own event log; what it leaves is removed below with the temp dir.
      await run("podman", [...this.podmanFlags, "system", "reset", "-f"]).catch((err) =>
        resetFailure = `podman system reset: ${(err as Error).message}`
      );
    }
    for (const mount of mountsUnder(this.dir).reverse()) {
      const out = await new Deno.Command("umount", { args: ["-l", mount], stderr: "piped" })
        .output();
      if (!out.success) problems.push(`umount ${mount} failed`);
    }
    await removeCgroups(this.cgroupTag).catch((err) => problems.push((err as Error).message));
    await Deno.remove(this.dir, { recursive: true }).catch((err) => {
      if (resetFailure !== undefined) problems.push(resetFailure);
      problems.push(`rm -r ${this.dir}: ${(err as Error).message}`);
    });
    for (const p of problems) this.#log(`cleanup: ${p}`);
  }
}

/** True when the cgroup2 mount of a hybrid host lists controllers (crun 1.8.1 then refuses). */
function controllersListed(): boolean {
  try {
    return Deno.readTextFileSync(UNIFIED_CONTROLLERS).trim() !== "";
  } catch {
    return false;
  }
}

async function run(
  program: string,
  args: string[],
  opts: { env?: Record<string, string> } = {},
): Promise<void> {
  const out = await new Deno.Command(program, {
    args,
    env: opts.env,
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  if (!out.success) {
    const why = new TextDecoder().decode(out.stderr).trim().split("\n").pop();
    throw new Error(`"${program} ${args.join(" ")}" failed: ${why}`);
  }
}

/** Mount points at or under `dir` (from /proc/self/mountinfo), in mount order. */
export function mountsUnder(dir: string): string[] {
  const unescape = (s: string) =>
    s.replace(/\\(\d{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)));
  return Deno.readTextFileSync("/proc/self/mountinfo").split("\n")
    .map((line) => unescape(line.split(" ")[4] ?? ""))
    .filter((m) => m === dir || m.startsWith(`${dir}/`));
}

/** Every cgroup directory named `tag` (or under it), in every hierarchy, deepest first. */
export function cgroupDirs(tag: string): string[] {
  const found: string[] = [];
  const walk = (dir: string) => {
    let entries: Deno.DirEntry[];
    try {
      entries = [...Deno.readDirSync(dir)];
    } catch {
      return;
    }
    for (const e of entries) if (e.isDirectory) walk(`${dir}/${e.name}`);
    found.push(dir);
  };
  let hierarchies: Deno.DirEntry[] = [];
  try {
    hierarchies = [...Deno.readDirSync(CGROUP_ROOT)];
  } catch { /* no cgroupfs */ }
  const tops = hierarchies.filter((h) => h.isDirectory).map((h) =>
    `${CGROUP_ROOT}/${h.name}/${tag}`
  );
  // A pure v2 host: the parent sits at the root.
  tops.push(`${CGROUP_ROOT}/${tag}`);
  for (const top of tops) {
    try {
      if (Deno.statSync(top).isDirectory) walk(top);
    } catch { /* absent in this hierarchy */ }
  }
  return found;
}

function killCgroups(tag: string): void {
  for (const dir of cgroupDirs(tag)) {
    let procs = "";
    try {
      procs = Deno.readTextFileSync(`${dir}/cgroup.procs`);
    } catch { /* gone */ }
    for (const pid of procs.split("\n").filter((p) => p !== "")) {
      try {
        Deno.kill(Number(pid), "SIGKILL");
      } catch { /* exited */ }
    }
  }
}

/** Removes the bench's cgroups (killing what is left in them), retrying while they drain. */
async function removeCgroups(tag: string): Promise<void> {
  for (let attempt = 0; attempt < 50; attempt++) {
    killCgroups(tag);
    const dirs = cgroupDirs(tag);
    if (dirs.length === 0) return;
    for (const dir of dirs) {
      try {
        Deno.removeSync(dir);
      } catch { /* busy: retry */ }
    }
    if (cgroupDirs(tag).length === 0) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`cgroups left behind: ${cgroupDirs(tag).join(", ")}`);
}
