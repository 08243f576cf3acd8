import assert from "node:assert/strict";
import { UserError } from "../base/errors.ts";
import type { LinuxSeccomp } from "../base/spec.ts";
import { DEFAULT_CAPABILITIES } from "./capabilities.ts";
import {
  defaultSeccompProfile,
  parseSeccompProfile,
  readSeccompProfile,
  resolveSeccomp,
} from "./seccomp_profile.ts";

const DEFAULT = defaultSeccompProfile();

/** How a resolved filter treats a call made without looking at its arguments. */
function verdict(filter: LinuxSeccomp, name: string): string {
  const rules = (filter.syscalls ?? []).filter((r) => r.names.includes(name));
  if (rules.some((r) => r.action === "SCMP_ACT_ALLOW" && r.args === undefined)) return "allow";
  if (rules.some((r) => r.action === "SCMP_ACT_ALLOW")) return "allow if args";
  const other = rules.find((r) => r.action !== "SCMP_ACT_ALLOW");
  if (other) return `${other.action}(${other.errnoRet ?? filter.defaultErrnoRet})`;
  return `default ${filter.defaultAction}(${filter.defaultErrnoRet})`;
}

const docker = (
  caps: readonly string[],
  more: { arch?: "x86_64" | "aarch64"; kernel?: string } = {},
) =>
  resolveSeccomp(DEFAULT, {
    capabilities: caps,
    arch: "x86_64",
    kernel: "6.1.0-18-amd64",
    ...more,
  });

/** A UserError with one line that matches `pattern`, and Docker's exit code 125. */
function assertUserError(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof UserError, `not a UserError: ${err}`);
    assert.match(err.message, pattern);
    assert.ok(!err.message.includes("\n"), `more than one line: ${err.message}`);
    assert.equal(err.exitCode, 125);
    return true;
  });
}

const parse = (json: unknown) => parseSeccompProfile(JSON.stringify(json), "my.json");
const minimal = { defaultAction: "SCMP_ACT_ERRNO" };

Deno.test("Docker's default profile with Docker's default capabilities", () => {
  const filter = docker(DEFAULT_CAPABILITIES);
  assert.equal(filter.defaultAction, "SCMP_ACT_ERRNO");
  assert.equal(filter.defaultErrnoRet, 1);
  assert.deepEqual(filter.architectures, ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]);
  for (const name of ["read", "write", "getpid", "execve", "arch_prctl", "chroot", "setns"]) {
    const expected = name === "setns" ? "default SCMP_ACT_ERRNO(1)" : "allow";
    assert.equal(verdict(filter, name), expected, name);
  }
  for (
    const name of ["mount", "umount2", "unshare", "keyctl", "bpf", "reboot", "open_by_handle_at"]
  ) {
    assert.equal(verdict(filter, name), "default SCMP_ACT_ERRNO(1)", name);
  }
  // clone only without namespace flags (the mask is every CLONE_NEW*), on arg 0 off s390.
  assert.equal(verdict(filter, "clone"), "allow if args");
  const clone = filter.syscalls!.find((r) => r.names.includes("clone"))!;
  assert.deepEqual(clone.args, [
    { index: 0, value: 0x7e020000, valueTwo: 0, op: "SCMP_CMP_MASKED_EQ" },
  ]);
  // clone3's flags sit in memory seccomp cannot read: ENOSYS, so that glibc falls back to clone.
  assert.equal(verdict(filter, "clone3"), "SCMP_ACT_ERRNO(38)");
  // Sockets of any family but AF_ALG (38) and AF_VSOCK (40).
  assert.deepEqual(
    filter.syscalls!.filter((r) => r.names.includes("socket")).map((r) => r.args),
    [
      [{ index: 0, value: 38, valueTwo: 0, op: "SCMP_CMP_LT" }],
      [{ index: 0, value: 39, valueTwo: 0, op: "SCMP_CMP_EQ" }],
      [{ index: 0, value: 40, valueTwo: 0, op: "SCMP_CMP_GT" }],
    ],
  );
});

Deno.test("ptrace is allowed from kernel 4.8 on (minKernel), or with CAP_SYS_PTRACE", () => {
  assert.equal(verdict(docker(DEFAULT_CAPABILITIES), "ptrace"), "allow");
  assert.equal(verdict(docker(DEFAULT_CAPABILITIES, { kernel: "4.8.0" }), "ptrace"), "allow");
  assert.equal(
    verdict(docker(DEFAULT_CAPABILITIES, { kernel: "4.4.0-210-generic" }), "ptrace"),
    "default SCMP_ACT_ERRNO(1)",
  );
  const withPtrace = docker([...DEFAULT_CAPABILITIES, "CAP_SYS_PTRACE"], { kernel: "4.4.0" });
  assert.equal(verdict(withPtrace, "ptrace"), "allow");
  assert.equal(verdict(withPtrace, "kcmp"), "allow");
});

Deno.test("CAP_SYS_ADMIN allows mount, unshare, setns, clone and clone3, as in Docker", () => {
  const filter = docker([...DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN"]);
  for (const name of ["mount", "umount2", "unshare", "setns", "clone", "clone3", "bpf"]) {
    assert.equal(verdict(filter, name), "allow", name);
  }
  // The excludes on CAP_SYS_ADMIN dropped the conditional clone and clone3's ENOSYS.
  assert.equal(filter.syscalls!.filter((r) => r.names.includes("clone3")).length, 1);
  assert.ok(!filter.syscalls!.some((r) => r.names.includes("clone") && r.args !== undefined));
  assert.equal(verdict(filter, "keyctl"), "default SCMP_ACT_ERRNO(1)");
  assert.equal(verdict(filter, "reboot"), "default SCMP_ACT_ERRNO(1)");
  assert.equal(verdict(docker([...DEFAULT_CAPABILITIES, "CAP_SYS_BOOT"]), "reboot"), "allow");
});

Deno.test("archMap and arches follow the machine: aarch64 gets arm, not x86", () => {
  const filter = docker(DEFAULT_CAPABILITIES, { arch: "aarch64" });
  assert.deepEqual(filter.architectures, ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]);
  assert.equal(verdict(filter, "arm_fadvise64_64"), "allow");
  assert.equal(verdict(filter, "arch_prctl"), "default SCMP_ACT_ERRNO(1)");
  assert.equal(
    verdict(docker(DEFAULT_CAPABILITIES), "arm_fadvise64_64"),
    "default SCMP_ACT_ERRNO(1)",
  );
});

Deno.test("includes needs every capability it lists, excludes drops on any one", () => {
  const profile = parse({
    defaultAction: "SCMP_ACT_ERRNO",
    syscalls: [
      { names: ["a"], action: "SCMP_ACT_ALLOW", includes: { caps: ["CAP_X", "CAP_Y"] } },
      { names: ["b"], action: "SCMP_ACT_ALLOW", excludes: { caps: ["CAP_X", "CAP_Z"] } },
      { name: "c", action: "SCMP_ACT_ALLOW", excludes: { arches: ["amd64"] } },
    ],
  });
  const names = (caps: string[]) =>
    resolveSeccomp(profile, { capabilities: caps, arch: "x86_64" }).syscalls!.flatMap((r) =>
      r.names
    );
  assert.deepEqual(names([]), ["b"]);
  assert.deepEqual(names(["CAP_X"]), []);
  assert.deepEqual(names(["CAP_X", "CAP_Y"]), ["a"]);
  assert.deepEqual(
    resolveSeccomp(profile, { capabilities: [], arch: "aarch64" }).syscalls!.flatMap((r) =>
      r.names
    ),
    ["b", "c"],
  );
});

Deno.test("A profile of the OCI shape keeps its architectures, errno and flags", () => {
  const profile = parse({
    defaultAction: "SCMP_ACT_KILL_PROCESS",
    architectures: ["SCMP_ARCH_X86_64"],
    flags: ["SECCOMP_FILTER_FLAG_LOG"],
    syscalls: [{ names: ["getppid"], action: "SCMP_ACT_ERRNO", errnoRet: 99 }],
  });
  assert.deepEqual(resolveSeccomp(profile, { capabilities: [] }), {
    defaultAction: "SCMP_ACT_KILL_PROCESS",
    architectures: ["SCMP_ARCH_X86_64"],
    flags: ["SECCOMP_FILTER_FLAG_LOG"],
    syscalls: [{ names: ["getppid"], action: "SCMP_ACT_ERRNO", errnoRet: 99 }],
  });
});

Deno.test("A malformed profile is one line naming the file and where", () => {
  assertUserError(
    () =>
      parseSeccompProfile(
        '{\n  "defaultAction": "SCMP_ACT_ERRNO",\n  "syscalls": [}\n',
        "bad.json",
      ),
    /^Cannot parse seccomp profile "bad\.json": malformed JSON at line 3, column 16: expected a value$/,
  );
  assertUserError(
    () => parseSeccompProfile('{"defaultAction": "SCMP_ACT_ERRNO" "syscalls": []}', "bad.json"),
    /^Cannot parse seccomp profile "bad\.json": malformed JSON at line 1, column 36: expected ',' or '}'$/,
  );
  assertUserError(
    () => parseSeccompProfile("", "empty.json"),
    /^Cannot parse seccomp profile "empty\.json": malformed JSON at line 1, column 1: expected a value$/,
  );
});

Deno.test("Unknown actions, operators, architectures and flags are refused", () => {
  const call = (extra: object) => ({
    ...minimal,
    syscalls: [{ names: ["read"], action: "SCMP_ACT_ALLOW", ...extra }],
  });
  assertUserError(
    () => parse(call({ action: "SCMP_ACT_MAYBE" })),
    /^Invalid seccomp profile "my\.json": unknown action "SCMP_ACT_MAYBE" at syscalls\[0\]\.action$/,
  );
  assertUserError(
    () => parse({ defaultAction: "ALLOW" }),
    /^Invalid seccomp profile "my\.json": unknown action "ALLOW" at defaultAction$/,
  );
  assertUserError(
    () => parse(call({ args: [{ index: 0, value: 1, op: "SCMP_CMP_ABOUT" }] })),
    /unknown operator "SCMP_CMP_ABOUT" at syscalls\[0\]\.args\[0\]\.op$/,
  );
  assertUserError(
    () => parse(call({ args: [{ index: 6, value: 1, op: "SCMP_CMP_EQ" }] })),
    /syscalls\[0\]\.args\[0\]\.index must be a whole number from 0 to 5, not 6$/,
  );
  assertUserError(
    () => parse({ ...minimal, architectures: ["SCMP_ARCH_Z80"] }),
    /unknown architecture "SCMP_ARCH_Z80" at architectures\[0\]$/,
  );
  assertUserError(
    () =>
      parse({
        ...minimal,
        archMap: [{ architecture: "SCMP_ARCH_X86_64", subArchitectures: ["x86"] }],
      }),
    /unknown architecture "x86" at archMap\[0\]\.subArchitectures\[0\]$/,
  );
  assertUserError(
    () => parse({ ...minimal, flags: ["SECCOMP_FILTER_FLAG_FAST"] }),
    /unknown flag "SECCOMP_FILTER_FLAG_FAST" at flags\[0\]$/,
  );
});

Deno.test("Entries without a name, or with two kinds of names, are refused", () => {
  assertUserError(
    () => parse({ ...minimal, syscalls: [{ action: "SCMP_ACT_ALLOW" }] }),
    /^Invalid seccomp profile "my\.json": syscalls\[0\] names no system call$/,
  );
  assertUserError(
    () => parse({ ...minimal, syscalls: [{ names: [], action: "SCMP_ACT_ALLOW" }] }),
    /syscalls\[0\] names no system call$/,
  );
  assertUserError(
    () => parse({ ...minimal, syscalls: [{ name: "a", names: ["b"], action: "SCMP_ACT_ALLOW" }] }),
    /syscalls\[0\] has both name and names: use one of them$/,
  );
  assertUserError(
    () => parse({ ...minimal, syscalls: [{ names: ["read"] }] }),
    /syscalls\[0\] has no action$/,
  );
});

Deno.test("What mini-docker cannot do is refused in one line", () => {
  assertUserError(
    () => parse({ ...minimal, listenerPath: "/run/agent.sock" }),
    /^Invalid seccomp profile "my\.json": listenerPath "\/run\/agent\.sock" is not supported: mini-docker has no seccomp agent$/,
  );
  assertUserError(
    () => parse({ ...minimal, syscalls: [{ names: ["read"], action: "SCMP_ACT_NOTIFY" }] }),
    /SCMP_ACT_NOTIFY at syscalls\[0\]\.action is not supported/,
  );
  assertUserError(
    () => parse({ ...minimal, architectures: ["SCMP_ARCH_X86_64"], archMap: DEFAULT.archMap }),
    /both architectures and archMap are given/,
  );
  assertUserError(
    () => parse({}),
    /defaultAction is missing \(to run without a filter, use --security-opt seccomp=unconfined\)$/,
  );
  assertUserError(
    () =>
      parse({
        ...minimal,
        syscalls: [{ names: ["a"], action: "SCMP_ACT_ALLOW", includes: { minKernel: "4" } }],
      }),
    /invalid kernel version "4" at syscalls\[0\]\.includes\.minKernel: expected "<kernel>\.<major>"$/,
  );
  assertUserError(
    () => parse({ ...minimal, defaultErrnoRet: -1 }),
    /defaultErrnoRet must be a whole number from 0 to 65535, not -1$/,
  );
});

Deno.test("readSeccompProfile names the file it cannot read", async () => {
  assertUserError(
    () => readSeccompProfile("/nonexistent/profile.json"),
    /^Cannot read seccomp profile "\/nonexistent\/profile\.json": No such file or directory$/,
  );
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/p.json`;
    await Deno.writeTextFile(path, '{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": null}');
    assert.deepEqual(readSeccompProfile(path), {
      source: path,
      defaultAction: "SCMP_ACT_ALLOW",
      syscalls: [],
    });
    assertUserError(
      () => readSeccompProfile(dir),
      /^Cannot read seccomp profile ".*": Is a directory$/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("seccomp_default.json is moby's profile, byte for byte", async () => {
  // git's blob hash of vendor/github.com/moby/profiles/seccomp/default.json (profiles v0.2.3).
  const bytes = await Deno.readFile(new URL("./seccomp_default.json", import.meta.url));
  const blob = new Uint8Array([...new TextEncoder().encode(`blob ${bytes.length}\0`), ...bytes]);
  const sha1 = new Uint8Array(await crypto.subtle.digest("SHA-1", blob));
  const hex = [...sha1].map((b) => b.toString(16).padStart(2, "0")).join("");
  assert.equal(hex, "ea5a494afb8d64898fa0f4f47ae0c4f5ba9cbbc9");
});
