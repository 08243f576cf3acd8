import assert from "node:assert/strict";
import { UserError } from "../base/errors.ts";
import { ARM64, CLONE_NEWUTS, SyscallError } from "../base/libc.ts";
import type { LinuxSeccomp } from "../base/spec.ts";
import { DEFAULT_CAPABILITIES } from "./capabilities.ts";
import { compileSeccomp, type SeccompProgram } from "./seccomp.ts";
import { installSeccomp } from "./seccomp_load.ts";
import { defaultSeccompProfile, resolveSeccomp } from "./seccomp_profile.ts";
import type { Reply, Request } from "./testdata/seccomp_worker.ts";

const EPERM = 1;
const EFAULT = 14;
const EINVAL = 22;
const ENOSYS = 38;
const AF_UNIX = 1;
const AF_INET = 2;
const AF_INET6 = 10;
const AF_VSOCK = 40;
const SOCK_STREAM = 1;
const SOCK_CLOEXEC = 0o2000000;
const KEYCTL_GET_KEYRING_ID = 0;
const KEY_SPEC_THREAD_KEYRING = -1;

/** System call numbers: x86_64's, and the generic table's for arm64. */
const NR = ARM64
  ? { getpid: 172, getppid: 173, unshare: 97, keyctl: 219, clone3: 435, socket: 198, bpf: 280 }
  : { getpid: 39, getppid: 110, unshare: 272, keyctl: 250, clone3: 435, socket: 41, bpf: 321 };
const NR_MOUNT = ARM64 ? 40 : 165;
const NR_PERSONALITY = ARM64 ? 92 : 135;
/** mseal(2), Linux 6.10: allowed by Docker's profile, unknown to libseccomp 2.5.4. */
const NR_MSEAL = 462;
/** A number no kernel has (yet). */
const NR_NONE = 1000;

/** Calls whose verdict differs between Docker's filter, CAP_SYS_ADMIN's and no filter. */
const PROBES: Request["calls"] = [
  { name: "getpid", nr: NR.getpid, args: [] },
  { name: "unshare", nr: NR.unshare, args: [CLONE_NEWUTS] },
  { name: "keyctl", nr: NR.keyctl, args: [KEYCTL_GET_KEYRING_ID, KEY_SPEC_THREAD_KEYRING, 0] },
  // A NULL clone_args of size 0: the kernel refuses it (EINVAL) before doing anything.
  { name: "clone3", nr: NR.clone3, args: [0, 0] },
  // NULL target: EFAULT once past the filter.
  { name: "mount", nr: NR_MOUNT, args: [0, 0, 0, 0, 0] },
  { name: "bpf", nr: NR.bpf, args: [0xffff, 0, 0] },
  { name: "vsock", nr: NR.socket, args: [AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0], closeFd: true },
  { name: "unix", nr: NR.socket, args: [AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0], closeFd: true },
  // 0xffffffff only reads the persona.
  { name: "personality", nr: NR_PERSONALITY, args: [0xffffffff] },
  { name: "mseal", nr: NR_MSEAL, args: [0, 0, 0] },
  { name: "none", nr: NR_NONE, args: [] },
];

/** Runs one request on a new worker thread, which ends with it. */
async function onWorker(request: Request): Promise<Reply> {
  const worker = new Worker(new URL("./testdata/seccomp_worker.ts", import.meta.url), {
    type: "module",
  });
  try {
    return await new Promise<Reply>((resolve, reject) => {
      worker.onmessage = (event: MessageEvent<Reply>) => resolve(event.data);
      worker.onerror = (event) => {
        event.preventDefault();
        reject(new Error(`Worker failed: ${event.message}`));
      };
      worker.postMessage(request);
    });
  } finally {
    worker.terminate();
  }
}

async function probe(compiled: SeccompProgram | undefined): Promise<Reply> {
  const reply = await onWorker({ ...compiled, calls: PROBES });
  assert.equal(reply.error, undefined);
  return reply;
}

function mainThreadSeccomp(): string {
  return /^Seccomp:\s*(\d+)$/m.exec(Deno.readTextFileSync("/proc/thread-self/status"))?.[1] ?? "";
}

const profile = defaultSeccompProfile();
const dockerFilter = (caps: readonly string[]) =>
  compileSeccomp(resolveSeccomp(profile, { capabilities: caps }));

Deno.test("Without a filter, the probes reach the kernel (the control for the tests below)", async () => {
  const { status, results } = await probe(undefined);
  assert.equal(status.Seccomp, "0");
  assert.equal(results.getpid, Deno.pid);
  assert.equal(results.unshare, 0, "root may unshare a UTS namespace");
  assert.notEqual(results.keyctl, -EPERM);
  assert.equal(results.clone3, -EINVAL);
  assert.equal(results.mount, -EFAULT);
  assert.equal(results.bpf, -EINVAL);
  assert.notEqual(results.vsock, -EPERM);
  assert.ok(results.unix! >= 0);
  assert.equal(results.none, -ENOSYS);
});

Deno.test("Docker's default filter, loaded for real on a worker thread", async () => {
  const compiled = dockerFilter(DEFAULT_CAPABILITIES);
  assert.equal(compiled.flags, 4 /* SECCOMP_FILTER_FLAG_SPEC_ALLOW, runc's default */);
  const { status, results } = await probe(compiled);
  assert.equal(status.Seccomp, "2", "the worker thread is filtered");
  assert.equal(status.Seccomp_filters, "1");
  assert.equal(status.NoNewPrivs, "0", "libseccomp did not set no_new_privs");
  assert.equal(results.getpid, Deno.pid);
  assert.ok(results.unix! >= 0, "AF_UNIX sockets are allowed");
  assert.ok(results.personality! >= 0);
  for (const name of ["unshare", "keyctl", "mount", "bpf", "vsock"]) {
    assert.equal(results[name], -EPERM, name);
  }
  // ENOSYS, not EPERM: glibc then falls back to clone, which the filter can inspect.
  assert.equal(results.clone3, -ENOSYS);
  // Past every number the filter names: ENOSYS (the stub), so new calls fall back too.
  assert.equal(results.none, -ENOSYS);
  assert.notEqual(results.mseal, -EPERM, "Docker allows mseal");
  assert.equal(mainThreadSeccomp(), "0", "the test's own thread stays unfiltered");
});

Deno.test("With CAP_SYS_ADMIN, unshare, mount and clone3 reach the kernel, as in Docker", async () => {
  const { status, results } = await probe(dockerFilter([...DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN"]));
  assert.equal(status.Seccomp, "2");
  assert.equal(results.unshare, 0);
  assert.equal(results.mount, -EFAULT);
  assert.equal(results.clone3, -EINVAL);
  assert.equal(results.keyctl, -EPERM);
  assert.equal(mainThreadSeccomp(), "0");
});

Deno.test("errnoRet, same-argument conditions and flags reach the program", async () => {
  const filter: LinuxSeccomp = {
    defaultAction: "SCMP_ACT_ALLOW",
    flags: ["SECCOMP_FILTER_FLAG_LOG"],
    syscalls: [
      { names: ["getppid", "no_such_call"], action: "SCMP_ACT_ERRNO", errnoRet: 99 },
      // Two conditions on argument 0 cannot both hold: each becomes a rule of its own.
      {
        names: ["socket"],
        action: "SCMP_ACT_ERRNO",
        args: [
          { index: 0, value: AF_UNIX, op: "SCMP_CMP_EQ" },
          { index: 0, value: AF_INET, op: "SCMP_CMP_EQ" },
        ],
      },
    ],
  };
  const compiled = compileSeccomp(filter);
  assert.equal(compiled.flags, 2 /* SECCOMP_FILTER_FLAG_LOG */);
  const sock = (family: number) => [family, SOCK_STREAM | SOCK_CLOEXEC, 0];
  const { results } = await onWorker({
    ...compiled,
    calls: [
      { name: "getppid", nr: NR.getppid, args: [] },
      { name: "unix", nr: NR.socket, args: sock(AF_UNIX), closeFd: true },
      { name: "inet", nr: NR.socket, args: sock(AF_INET), closeFd: true },
      { name: "inet6", nr: NR.socket, args: sock(AF_INET6), closeFd: true },
      { name: "none", nr: NR_NONE, args: [] },
    ],
  });
  assert.equal(results.getppid, -99);
  assert.equal(results.unix, -EPERM);
  assert.equal(results.inet, -EPERM);
  assert.notEqual(results.inet6, -EPERM);
  assert.equal(results.none, -ENOSYS, "the kernel's own ENOSYS: no stub under ALLOW");
});

/** A UserError with one line that matches `pattern`. */
function assertUserError(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof UserError, `not a UserError: ${err}`);
    assert.match(err.message, pattern);
    assert.ok(!err.message.includes("\n"));
    return true;
  });
}

Deno.test("compileSeccomp refuses what it cannot compile, in one line", () => {
  const base: LinuxSeccomp = { defaultAction: "SCMP_ACT_ERRNO" };
  assertUserError(
    () => compileSeccomp({ ...base, syscalls: [{ names: ["read"], action: "SCMP_ACT_PERHAPS" }] }),
    /^Unknown seccomp action "SCMP_ACT_PERHAPS" in syscalls\[0\]$/,
  );
  assertUserError(
    () =>
      compileSeccomp({
        ...base,
        syscalls: [{
          names: ["read"],
          action: "SCMP_ACT_ALLOW",
          args: [{ index: 0, value: 0, op: "SCMP_CMP_ISH" }],
        }],
      }),
    /^Unknown seccomp operator "SCMP_CMP_ISH" in syscalls\[0\]\.args\[0\]$/,
  );
  assertUserError(
    () => compileSeccomp({ ...base, architectures: ["SCMP_ARCH_PDP11"] }),
    /^Unknown seccomp architecture "SCMP_ARCH_PDP11"$/,
  );
  assertUserError(
    () => compileSeccomp({ ...base, flags: ["SECCOMP_FILTER_FLAG_QUIET"] }),
    /^Unknown seccomp flag "SECCOMP_FILTER_FLAG_QUIET"$/,
  );
  assertUserError(
    () => compileSeccomp({ ...base, flags: ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"] }),
    /is not supported: it needs a seccomp agent/,
  );
  assertUserError(
    () => compileSeccomp({ defaultAction: "SCMP_ACT_NOTIFY" }),
    /^Seccomp action "SCMP_ACT_NOTIFY" in defaultAction is not supported/,
  );
  // TSYNC would filter all of mini-docker's threads: never passed on.
  assert.equal(compileSeccomp({ ...base, flags: ["SECCOMP_FILTER_FLAG_TSYNC"] }).flags, 0);
});

Deno.test("installSeccomp refuses a program that is not whole instructions, before any call", () => {
  assert.throws(() => installSeccomp(new Uint8Array(12)), (err: unknown) => {
    assert.ok(err instanceof SyscallError);
    assert.equal(err.errno, EINVAL);
    return true;
  });
  assert.equal(mainThreadSeccomp(), "0");
});

Deno.test("The cache returns the program it stored for the same filter, and only for it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const cacheDir = `${dir}/seccomp`;
    const filter = resolveSeccomp(profile, { capabilities: DEFAULT_CAPABILITIES });
    const fresh = compileSeccomp(filter);
    const first = compileSeccomp(filter, { cacheDir });
    assert.deepEqual(first, fresh);
    const entries = [...Deno.readDirSync(cacheDir)].map((e) => e.name);
    assert.equal(entries.length, 1);
    assert.match(entries[0]!, /^[0-9a-f]{16}\.bpf$/);

    // Proof that a hit reads the entry: change its program, keep its key.
    const path = `${cacheDir}/${entries[0]}`;
    const entry = Deno.readFileSync(path);
    entry[entry.length - 4] = entry[entry.length - 4]! ^ 0xff;
    Deno.writeFileSync(path, entry);
    const hit = compileSeccomp(filter, { cacheDir });
    assert.deepEqual(hit.program, entry.slice(entry.length - fresh.program.length));
    assert.notDeepEqual(hit.program, fresh.program);

    // Another filter is another entry; a damaged entry is compiled again.
    const other = resolveSeccomp(profile, {
      capabilities: [...DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN"],
    });
    assert.deepEqual(compileSeccomp(other, { cacheDir }), compileSeccomp(other));
    assert.equal([...Deno.readDirSync(cacheDir)].length, 2);
    Deno.writeFileSync(path, new Uint8Array([1, 2, 3]));
    assert.deepEqual(compileSeccomp(filter, { cacheDir }), fresh);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
