/**
 * An OCI bundle for the tests of `mini-docker runtime` (tests/oci_*_test.ts): runc's default spec
 * over the test root filesystem; the runtime's root and log in the test's directory.
 */
import assert from "node:assert/strict";
import { REPO, type Result, type TestEnv, withDeadline } from "../helpers.ts";

export const MAIN = `${REPO}/main.ts`;
const decoder = new TextDecoder();
// deno-lint-ignore no-explicit-any
export type Config = Record<string, any>;

/** A bundle of the test rootfs and the runtime's root, in the test's directory. */
export class Bundle {
  readonly dir: string;
  readonly root: string;
  constructor(readonly t: TestEnv, name = "bundle") {
    this.dir = `${t.dir}/${name}`;
    this.root = `${t.dir}/runtime-root`;
    Deno.mkdirSync(this.dir, { recursive: true });
  }

  /** Writes config.json: runc's default spec (from `runtime spec`), changed by `edit`. */
  async write(id: string, edit: (c: Config) => void): Promise<void> {
    try {
      Deno.removeSync(`${this.dir}/config.json`);
    } catch { /* first one */ }
    const r = await this.rt(["spec", "--bundle", this.dir]);
    assert.equal(r.code, 0, r.stderr);
    const c: Config = JSON.parse(Deno.readTextFileSync(`${this.dir}/config.json`));
    c.process.terminal = false;
    c.root = { path: this.t.rootfs, readonly: true };
    c.linux.cgroupsPath = `/${this.t.cgroupParent}/${id}`;
    edit(c);
    Deno.writeTextFileSync(`${this.dir}/config.json`, JSON.stringify(c, null, 2));
  }

  /** The command line of `mini-docker runtime` with this bundle's globals, then `args`. */
  argv(args: string[]): string[] {
    return [Deno.execPath(), "run", "-A", "--quiet", MAIN, "runtime", ...this.globals(), ...args];
  }

  /** `mini-docker runtime --root ROOT --log LOG --log-format json ARGS...`, output collected. */
  async rt(args: string[]): Promise<Result> {
    const [deno, ...rest] = this.argv(args);
    const child = new Deno.Command(deno!, {
      args: rest,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const out = await withDeadline(child, `runtime ${args.join(" ")}`, () => child.output());
    return {
      code: out.code,
      stdout: decoder.decode(out.stdout),
      stderr: decoder.decode(out.stderr),
    };
  }

  /**
   * The same, with the runtime's (and so its container's) stdout and stderr in `file`: a
   * container created by it outlives it, with them.
   */
  async rtTo(file: string, args: string[]): Promise<number> {
    const child = new Deno.Command("/bin/sh", {
      args: [
        "-c",
        'out=$1; shift; exec "$@" >"$out" 2>&1',
        "sh",
        file,
        Deno.execPath(),
        "run",
        "-A",
        "--quiet",
        MAIN,
        "runtime",
        ...this.globals(),
        ...args,
      ],
      stdin: "null",
    }).spawn();
    return (await withDeadline(child, `runtime ${args.join(" ")}`, () => child.status)).code;
  }

  globals(): string[] {
    return ["--root", this.root, "--log", `${this.dir}/log.json`, "--log-format", "json"];
  }

  async state(id: string): Promise<Record<string, unknown>> {
    const r = await this.rt(["state", id]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout);
  }

  /** What the runtime's root holds of containers: their state, gates and /proc peers. */
  leftovers(): string[] {
    const out: string[] = [];
    for (const sub of ["containers", "gates", "proc"]) {
      try {
        for (const e of Deno.readDirSync(`${this.root}/${sub}`)) out.push(`${sub}/${e.name}`);
      } catch { /* never made */ }
    }
    return out;
  }
}
