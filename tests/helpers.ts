/**
 * Shared pieces of the end-to-end tests: a busybox root filesystem built from the host (no
 * download), an isolated mini-docker environment per test (its own state, data and cgroup
 * parent), a way to run the CLI from source, and the check that nothing was left behind.
 */
import assert from "node:assert/strict";
import { buildBusyboxRootfs } from "../rootfs/prepare.ts";
import { type Cgroup, cgroupDriver } from "../cgroups/manager.ts";
import { hostRoutes, overlaps } from "../network/ip.ts";
import { createHash } from "node:crypto";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

/**
 * How much slower than this machine the tests may run: in the cgroup v2 VM (software
 * emulation) a Deno start-up takes seconds, so waits there are stretched.
 */
export const SLOWDOWN = Deno.env.get("MINI_DOCKER_CGROUP2_VM") === "1" ? 10 : 1;
export const REPO = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

/** The result of one mini-docker invocation. */
export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * A /16 of 10.0.0.0/8 for one test environment's networks, picked at random among those that
 * overlap no route of the host: environments side by side (and the user's own networks) never
 * share a subnet.
 */
function testPool(): number {
  const routes = hostRoutes();
  for (;;) {
    const second = 64 + Math.floor(Math.random() * 190);
    const candidate = { address: ((10 << 24) | (second << 16)) >>> 0, prefix: 16 };
    if (!routes.some((r) => overlaps(r, candidate))) return second;
  }
}

/**
 * One isolated mini-docker world: temp run root, data root and cgroup parent, a network pool
 * and default bridge of its own, and a working directory whose `rootfs/alpine` is a busybox root
 * filesystem (so the seed's command lines run verbatim). Dispose it to remove everything
 * (failing when something was left behind).
 */
export class TestEnv implements AsyncDisposable {
  readonly dir: string;
  readonly rootfs: string;
  readonly env: Record<string, string>;
  readonly cgroupParent: string;
  /** The default network's bridge interface. */
  readonly bridge: string;
  /** Networks get /24s of 10.<poolOctet>.0.0/16. */
  readonly poolOctet: number;

  private constructor(dir: string) {
    this.dir = dir;
    this.rootfs = `${dir}/work/rootfs/alpine`;
    const tag = crypto.randomUUID().slice(0, 8);
    this.cgroupParent = `mini-docker-test-${tag}`;
    this.bridge = `mdt-${tag}`;
    this.poolOctet = testPool();
    this.env = {
      MINI_DOCKER_ROOT: `${dir}/lib`,
      MINI_DOCKER_RUNROOT: `${dir}/run`,
      MINI_DOCKER_CGROUP_PARENT: this.cgroupParent,
      MINI_DOCKER_BRIDGE: this.bridge,
      MINI_DOCKER_SUBNET_POOL: `base=10.${this.poolOctet}.0.0/16,size=24`,
      MINI_DOCKER_ROOTFS: "",
      // Never the internet: without a rootfs, the default image is looked for on a closed port.
      MINI_DOCKER_DEFAULT_IMAGE: "127.0.0.1:9/none:latest",
    };
  }

  /** Creates the environment and its busybox rootfs. */
  static async create(): Promise<TestEnv> {
    const dir = await Deno.makeTempDir({ prefix: "mini-docker-test-" });
    const env = new TestEnv(dir);
    await buildBusyboxRootfs(env.rootfs);
    return env;
  }

  /** The working directory of the CLI (holds rootfs/alpine). */
  get cwd(): string {
    return `${this.dir}/work`;
  }

  /** Runs `mini-docker ARGS...` from source and collects its output. */
  async run(
    args: string[],
    opts: { stdin?: string; env?: Record<string, string> } = {},
  ): Promise<Result> {
    const child = this.spawn(args, { ...opts, stdin: opts.stdin === undefined ? "null" : "piped" });
    if (opts.stdin !== undefined) {
      const w = child.stdin.getWriter();
      await w.write(new TextEncoder().encode(opts.stdin));
      await w.close();
    }
    const out = await withDeadline(child, `mini-docker ${args.join(" ")}`, () => child.output());
    const dec = new TextDecoder();
    return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  }

  /**
   * Runs `mini-docker ARGS...` on a terminal of its own (script(1)), as a person at a terminal
   * would, with `input` typed into it; its output as the terminal showed it ("\r" removed).
   */
  async runOnTerminal(args: string[], input: string): Promise<Result> {
    const quote = (a: string) => `'${a.replaceAll("'", `'\\''`)}'`;
    // `exec`: script(1) runs the line with $SHELL -c (sh when unset, as under CI), and not
    // every shell execs a lone command; mini-docker must be the terminal's process itself.
    const line = "exec " +
      [Deno.execPath(), "run", "-A", "--quiet", MAIN, ...args].map(quote).join(" ");
    const child = new Deno.Command("script", {
      args: ["-qec", line, "/dev/null"],
      cwd: this.cwd,
      env: Object.fromEntries(Object.entries(this.env).filter(([, v]) => v !== "")),
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(input));
    await w.close();
    const out = await withDeadline(
      child,
      `mini-docker ${args.join(" ")} on a terminal`,
      () => child.output(),
    );
    const dec = new TextDecoder();
    return {
      code: out.code,
      stdout: dec.decode(out.stdout).replaceAll("\r", ""),
      stderr: dec.decode(out.stderr),
    };
  }

  /** Starts `mini-docker ARGS...` and returns the process (stdout and stderr piped). */
  spawn(
    args: string[],
    opts: { stdin?: "null" | "piped" | "inherit"; env?: Record<string, string> } = {},
  ): Deno.ChildProcess {
    const env = { ...this.env, ...opts.env };
    if (env.MINI_DOCKER_ROOTFS === "") delete env.MINI_DOCKER_ROOTFS;
    return new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--quiet", MAIN, ...args],
      cwd: this.cwd,
      env,
      stdin: opts.stdin ?? "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  }

  /** Ids of the containers that have state right now. */
  containerIds(): string[] {
    try {
      return [...Deno.readDirSync(`${this.dir}/lib/containers`)].map((e) => e.name);
    } catch {
      return [];
    }
  }

  /** Waits until one container is running and returns its id, host PID and cgroup. */
  async waitRunning(
    timeoutMs = 10_000 * SLOWDOWN,
  ): Promise<{ id: string; pid: number; cgroupsPath: string }> {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      for (const id of this.containerIds()) {
        try {
          const s = JSON.parse(
            Deno.readTextFileSync(`${this.dir}/lib/containers/${id}/state.json`),
          );
          if (s.status === "running") return { id, pid: s.process.pid, cgroupsPath: s.cgroupsPath };
        } catch { /* being written */ }
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error("no container reached running");
  }

  /**
   * Fails when anything of this environment is left: state, layers, mounts, cgroups, processes,
   * and of its networks: endpoint records (address allocations), kept namespaces, container
   * veths, port forwarding rules. Networks themselves outlive containers (with their bridge,
   * rules and keeper, as Docker's docker0): `networksToo` checks that they are gone as well.
   */
  assertNothingLeft(networksToo = false, networkIds = this.networkIds()): void {
    assert.deepEqual(this.containerIds(), [], "containers left behind");
    const keeper = `${this.dir}/run/networks/netns/keeper-`;
    const mounts = Deno.readTextFileSync("/proc/self/mountinfo").split("\n")
      .filter((l) => l.includes(this.dir) && (networksToo || !l.includes(keeper)));
    assert.deepEqual(mounts, [], "mounts left behind");
    assert.deepEqual(leftoverCgroups(this.cgroupParent), [], "cgroups left behind");
    assert.deepEqual(processesIn(this.cgroupParent), [], "processes left behind");
    assert.deepEqual(
      this.networkLeftovers(networksToo, networkIds),
      [],
      "network state left behind",
    );
    assert.deepEqual(this.volumeLeftovers(), [], "volume state left behind");
  }

  /**
   * What is left of volumes that nothing should hold: interrupted creates, removals and
   * copy-ups, and references of containers that are gone. Volumes themselves outlive their
   * containers by design.
   */
  volumeLeftovers(): string[] {
    const out: string[] = [];
    const dir = `${this.dir}/lib/volumes`;
    let entries: Deno.DirEntry[];
    try {
      entries = [...Deno.readDirSync(dir)];
    } catch {
      return out; // no volume used
    }
    const containers = new Set(this.containerIds());
    for (const e of entries) {
      if (e.name.startsWith(".")) {
        out.push(`volumes/${e.name}`);
        continue;
      }
      for (const f of Deno.readDirSync(`${dir}/${e.name}`)) {
        if (f.name.startsWith(".")) out.push(`volumes/${e.name}/${f.name}`);
      }
      try {
        for (const r of Deno.readDirSync(`${dir}/${e.name}/refs`)) {
          if (!containers.has(r.name)) out.push(`reference of ${r.name} to volume ${e.name}`);
        }
      } catch { /* none */ }
    }
    return out;
  }

  /** The ids of this environment's networks (the default one included, once used). */
  networkIds(): string[] {
    try {
      return [...Deno.readDirSync(`${this.dir}/lib/networks`)]
        .filter((e) => e.name.endsWith(".json"))
        .map((e) => e.name.slice(0, -5));
    } catch {
      return [];
    }
  }

  /** What is left of this environment's networks, one line per thing (see assertNothingLeft). */
  networkLeftovers(networksToo: boolean, networkIds = this.networkIds()): string[] {
    const out: string[] = [];
    try {
      for (const e of Deno.readDirSync(`${this.dir}/run/networks/endpoints`)) {
        if (networksToo || !e.name.startsWith("keeper-")) out.push(`endpoint record ${e.name}`);
      }
    } catch { /* no network used */ }
    // The default network's bridge, and br-<id> of the others.
    const bridges = [this.bridge, ...networkIds.map((id) => `br-${id.slice(0, 12)}`)];
    for (const bridge of bridges) {
      let ports: string[];
      try {
        ports = [...Deno.readDirSync(`/sys/class/net/${bridge}/brif`)].map((e) => e.name);
      } catch {
        continue; // no such bridge
      }
      if (networksToo) out.push(`bridge ${bridge}`);
      // One port is the network's keeper; any other is a container's veth.
      if (ports.length > 1) out.push(`veths on ${bridge}: ${ports.join(" ")}`);
    }
    // netavark names its chains after a network (mini-docker gives it the network's id):
    // NETAVARK-<hash> (NAT) and NETAVARK-DN-<hash> (port forwarding), and marks port forwarding
    // rules with a "dnat name: <network>" comment.
    const hashes = networkIds.map((id) =>
      createHash("sha512").update(id).digest("hex").toUpperCase().slice(0, 13)
    );
    const pool = new RegExp(`\\b10\\.${this.poolOctet}\\.\\d+\\.\\d+`);
    for (const line of iptablesRules()) {
      const ours = pool.test(line) || hashes.some((h) => line.includes(h)) ||
        bridges.some((b) => new RegExp(`-[io] ${b}\\b`).test(line)) ||
        networkIds.some((id) => line.includes(`dnat name: ${id}`));
      // Without networksToo only a container's rules count: port forwarding.
      const forContainer = /DNAT|dnat name|--dport/.test(line);
      if (ours && (networksToo || forContainer)) out.push(`rule ${line}`);
    }
    return out;
  }

  /** Waits until the DNS server of this environment's networks (aardvark-dns) has left. */
  async waitDnsGone(timeoutMs = 5_000 * SLOWDOWN): Promise<void> {
    const config = `${this.dir}/run/networks`;
    await waitFor(() => processesWith(config).length === 0, timeoutMs, "aardvark-dns to leave");
  }

  async [Symbol.asyncDispose](): Promise<void> {
    // The supervisor of detached containers would linger a few seconds: end it now.
    killSupervisors(`${this.dir}/run`);
    try {
      this.assertNothingLeft();
      // Networks outlive their containers by design: remove them, then check that nothing of
      // them is left either.
      const networks = this.networkIds();
      if (networks.length > 0) {
        const rm = await this.run(["network", "rm", ...networks]);
        assert.equal(rm.code, 0, `network rm: ${rm.stderr}`);
      }
      this.assertNothingLeft(true, networks);
      await this.waitDnsGone();
    } finally {
      for (const dir of cgroupDirs(this.cgroupParent).reverse()) {
        try {
          Deno.removeSync(dir);
        } catch { /* busy: reported above */ }
      }
      await Deno.remove(this.dir, { recursive: true });
    }
  }
}

/** The host's iptables rules (IPv4, every table), one per line; none without iptables. */
export function iptablesRules(): string[] {
  try {
    const out = new Deno.Command("iptables-save", { stdout: "piped", stderr: "null" }).outputSync();
    return new TextDecoder().decode(out.stdout).split("\n").filter((l) => l.startsWith("-A "));
  } catch {
    return [];
  }
}

/** PIDs of processes whose command line mentions `text`. */
export function processesWith(text: string): number[] {
  const pids: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name) || Number(e.name) === Deno.pid) continue;
    try {
      const cmdline = Deno.readTextFileSync(`/proc/${e.name}/cmdline`).replaceAll("\0", " ");
      if (cmdline.includes(text)) pids.push(Number(e.name));
    } catch { /* exited */ }
  }
  return pids;
}

/** Every cgroup directory at or under `parent`, on v1 and v2. */
function cgroupDirs(parent: string): string[] {
  const out: string[] = [];
  const roots = ["/sys/fs/cgroup"];
  try {
    for (const e of Deno.readDirSync("/sys/fs/cgroup")) {
      if (e.isDirectory) roots.push(`/sys/fs/cgroup/${e.name}`);
    }
  } catch { /* no cgroupfs */ }
  for (const root of roots) {
    const base = `${root}/${parent}`;
    try {
      Deno.statSync(base);
    } catch {
      continue;
    }
    out.push(base);
    for (const e of Deno.readDirSync(base)) if (e.isDirectory) out.push(`${base}/${e.name}`);
  }
  return out;
}

/** Container cgroups (below the parent) still present. */
export function leftoverCgroups(parent: string): string[] {
  return cgroupDirs(parent).filter((d) => !d.endsWith(`/${parent}`));
}

/** PIDs of processes whose cgroup lies under `parent`. */
export function processesIn(parent: string): number[] {
  const pids: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      if (Deno.readTextFileSync(`/proc/${e.name}/cgroup`).includes(`/${parent}/`)) {
        pids.push(Number(e.name));
      }
    } catch { /* exited */ }
  }
  return pids;
}

/**
 * How long a test waits for one command it started to end. A command that hangs is a failure
 * that names it, never a suite that hangs until CI's limit (a test once did: the whole run was
 * lost, with no summary).
 */
export const COMMAND_DEADLINE_MS = 120_000 * SLOWDOWN;

/**
 * Runs `wait` (which waits for `child`), killing the child if it has not ended after
 * `COMMAND_DEADLINE_MS`; then fails naming `what`.
 */
export async function withDeadline<T>(
  child: Deno.ChildProcess,
  what: string,
  wait: () => Promise<T>,
  ms = COMMAND_DEADLINE_MS,
): Promise<T> {
  let expired = false;
  const timer = setTimeout(() => {
    expired = true;
    try {
      child.kill("SIGKILL");
    } catch { /* it has just ended */ }
  }, ms);
  try {
    const result = await wait();
    if (expired) throw new Error(`${what}: still running after ${ms / 1000} s, killed`);
    return result;
  } finally {
    clearTimeout(timer);
  }
}

/** Waits until `fn` returns true (polling), or fails after `timeoutMs`. */
export async function waitFor(
  fn: () => boolean,
  timeoutMs = 10_000,
  what = "condition",
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * A running container, its output collected as it comes. Disposing of it ends it if the test
 * did not (two Ctrl-C: mini-docker kills the container and cleans up), so that a failed
 * assertion is reported rather than hidden behind "something was left behind".
 */
export interface Running extends AsyncDisposable {
  id: string;
  cgroup: Cgroup;
  /** Waits until stdout matches. */
  waitOutput(re: RegExp, timeoutMs?: number): Promise<void>;
  /** Sends a signal to `mini-docker run`, which forwards it to the container's PID 1. */
  signal(sig: Deno.Signal): void;
  /** Waits for the end of `mini-docker run` and returns its result. */
  done(): Promise<Result>;
}

/** Container start-up takes seconds in the cgroup2 VM (software emulation). */
export const START_TIMEOUT_MS = 60_000;

/** Starts `mini-docker run ARGS...` and waits until its container runs. */
export async function startRunning(t: TestEnv, args: string[]): Promise<Running> {
  const child = t.spawn(["run", ...args]);
  let out = "";
  const stdout = child.stdout.pipeThrough(new TextDecoderStream()).pipeTo(
    new WritableStream({ write: (chunk) => void (out += chunk) }),
  );
  const stderr = new Response(child.stderr).text();
  let result: Promise<Result> | undefined;
  const done = () =>
    result ??= (async () => {
      const status = await child.status;
      await stdout;
      return { code: status.code, stdout: out, stderr: await stderr };
    })();
  let id: string;
  try {
    id = (await t.waitRunning(START_TIMEOUT_MS)).id;
  } catch (err) {
    child.kill("SIGKILL");
    await done();
    throw err;
  }
  const cgroup = cgroupDriver({ parent: t.cgroupParent }).open(id);
  assert.ok(cgroup, "the container's cgroup exists");
  return {
    id,
    cgroup,
    async waitOutput(re, timeoutMs = START_TIMEOUT_MS) {
      const end = Date.now() + timeoutMs;
      while (!re.test(out)) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${re} in: ${out}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    signal: (sig) => child.kill(sig),
    done,
    async [Symbol.asyncDispose]() {
      if (result === undefined) {
        try {
          child.kill("SIGINT");
          await new Promise((r) => setTimeout(r, 100));
          child.kill("SIGINT");
        } catch { /* it has ended */ }
      }
      await done();
    },
  };
}

/** Stops a container whose PID 1 says "ready" and exits 0 on SIGTERM (forwarded by mini-docker). */
export async function stopRunning(c: Running): Promise<Result> {
  // A signal before the trap is set would be ignored (PID 1).
  await c.waitOutput(/ready/);
  c.signal("SIGTERM");
  const r = await c.done();
  assert.equal(r.code, 0, r.stderr);
  return r;
}

/** Kills the supervisors of a run root (one per build of mini-docker that served it). */
export function killSupervisors(runRoot: string): void {
  try {
    for (const e of Deno.readDirSync(`${runRoot}/supervisor`)) {
      if (!e.name.endsWith(".pid")) continue;
      try {
        Deno.kill(Number(Deno.readTextFileSync(`${runRoot}/supervisor/${e.name}`)), "SIGKILL");
      } catch { /* already gone */ }
    }
  } catch { /* none ran */ }
}
