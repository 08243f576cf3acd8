/**
 * Device rules: their checking, the v1 lines, the BPF program's encoding, and that program
 * loaded into the real kernel and attached to a real cgroup2 directory (the cgroup2 mount at
 * /sys/fs/cgroup/unified on this hybrid host, the root in the cgroup2 VM), where a shell moved
 * into it finds out what it may open and create. Needs root.
 */
import assert from "node:assert/strict";
import { UserError } from "../base/errors.ts";
import {
  attachDeviceRules,
  describeRule,
  deviceProgram,
  devicesV1Writes,
  normalizeRules,
} from "./devices.ts";
import { detectLayout } from "./manager.ts";
import { deviceVerdict, DOCKER_DEFAULT_RULES, mknodOutside, probeDevices } from "./testing.ts";

Deno.test("device rules: OCI's defaults filled in, bad rules refused with the rule named", () => {
  assert.deepEqual(normalizeRules([{ allow: false }]), [
    { allow: false, type: "a", access: "rwm" },
  ]);
  assert.deepEqual(
    normalizeRules([{ allow: true, type: "c", major: 136, minor: -1, access: "wmr" }]),
    [{ allow: true, type: "c", major: 136, access: "rwm" }],
  );
  assert.equal(describeRule({ allow: true, type: "c", major: 1, minor: 3 }), "allow c 1:3 rwm");
  assert.throws(
    () => normalizeRules([{ allow: true, type: "c", major: 1, minor: 3, access: "rwx" }]),
    new UserError(
      `Invalid device rule "allow c 1:3 rwx": the access must be one or more of "r", "w" and "m"`,
    ),
  );
  assert.throws(
    () => normalizeRules([{ allow: true, type: "c", access: "" }]),
    /Invalid device rule "allow c \*:\* ": the access/,
  );
  assert.throws(
    () => normalizeRules([{ allow: true, type: "p" as "c", major: 1 }]),
    new UserError(`Invalid device rule "allow p 1:* rwm": the type must be "a", "c" or "b"`),
  );
  for (const major of [-2, 1.5, 2 ** 31]) {
    assert.throws(
      () => normalizeRules([{ allow: true, type: "c", major }]),
      (err) => err instanceof UserError && /the major must be -1 \(any\)/.test(err.message),
    );
  }
});

Deno.test("device rules on v1: deny a first, then each rule in order, 'a' split when partial", () => {
  const writes = devicesV1Writes(normalizeRules(DOCKER_DEFAULT_RULES));
  assert.deepEqual(writes.map(({ file, value }) => `${file} ${value}`), [
    "devices.deny a",
    "devices.deny a",
    "devices.allow c *:* m",
    "devices.allow b *:* m",
    "devices.allow c 1:3 rwm",
    "devices.allow c 1:5 rwm",
    "devices.allow c 1:7 rwm",
    "devices.allow c 1:8 rwm",
    "devices.allow c 1:9 rwm",
    "devices.allow c 5:0 rwm",
    "devices.allow c 5:1 rwm",
    "devices.allow c 5:2 rwm",
    "devices.allow c 136:* rwm",
    "devices.allow c 10:200 rwm",
    "devices.deny c 10:229 rwm",
  ]);
  // "a" with numbers or a narrower access is no reset: one line per device type.
  assert.deepEqual(
    devicesV1Writes(normalizeRules([{ allow: true, major: 7, access: "r" }, { allow: true }])),
    [
      { file: "devices.deny", value: "a" },
      { file: "devices.allow", value: "c 7:* r" },
      { file: "devices.allow", value: "b 7:* r" },
      { file: "devices.allow", value: "a" },
    ],
  );
});

/** The instructions of a program, decoded as struct bpf_insn. */
function decode(bytes: Uint8Array): string[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: string[] = [];
  for (let at = 0; at < bytes.length; at += 8) {
    const code = view.getUint8(at).toString(16).padStart(2, "0");
    const regs = view.getUint8(at + 1);
    out.push(
      `${code} r${regs & 0xf} r${regs >> 4} ${view.getInt16(at + 2, true)} ${
        view.getInt32(at + 4, true)
      }`,
    );
  }
  return out;
}

Deno.test("device rules as BPF: last rule first, jumps to the next block, deny at the end", () => {
  // "code dst src off imm", by uapi/linux/bpf.h's encoding.
  const prologue = [
    "61 r2 r1 0 0", // r2 = *(u32 *)(r1 + 0): access_type
    "54 r2 r0 0 65535", // r2 &= 0xffff: the device type
    "61 r3 r1 0 0", // r3 = access_type
    "74 r3 r0 0 16", // r3 >>= 16: the access
    "61 r4 r1 4 0", // r4 = major
    "61 r5 r1 8 0", // r5 = minor
  ];
  const program = deviceProgram(normalizeRules([
    { allow: false },
    { allow: true, type: "c", major: 1, minor: 3, access: "rwm" },
    { allow: false, type: "b", major: 7, access: "w" },
  ]));
  assert.deepEqual(decode(program), [
    ...prologue,
    // deny b 7:* w, the last rule, is tried first; a deny matches on any shared access bit.
    "55 r2 r0 6 1", // if type != block, jump over the 6 instructions after this: the next block
    "bc r1 r3 0 0", // r1 = access
    "54 r1 r0 0 4", // r1 &= write
    "15 r1 r0 3 0", // if no bit is shared, next block
    "55 r4 r0 2 7", // if major != 7, next block
    "b7 r0 r0 0 0", // r0 = 0: deny
    "95 r0 r0 0 0", // exit
    // allow c 1:3 rwm: rwm needs no access test.
    "55 r2 r0 4 2",
    "55 r4 r0 3 1",
    "55 r5 r0 2 3",
    "b7 r0 r0 0 1", // r0 = 1: allow
    "95 r0 r0 0 0",
    // deny a *:* rwm matches everything: its block is the end, no default after it.
    "b7 r0 r0 0 0",
    "95 r0 r0 0 0",
  ]);
  // An allow with partial access matches only a request whose bits are all in the rule.
  assert.deepEqual(
    decode(deviceProgram(normalizeRules([{ allow: true, type: "c", access: "m" }]))).slice(6),
    [
      "55 r2 r0 5 2",
      "bc r1 r3 0 0",
      "54 r1 r0 0 1",
      "5d r1 r3 2 0",
      "b7 r0 r0 0 1",
      "95 r0 r0 0 0",
      "b7 r0 r0 0 0",
      "95 r0 r0 0 0",
    ],
  );
  // No rule at all: everything is denied.
  assert.deepEqual(decode(deviceProgram([])), [...prologue, "b7 r0 r0 0 0", "95 r0 r0 0 0"]);
});

// ---- The real kernel: a cgroup2 directory with the program attached. ----

const layout = detectLayout();
/** A cgroup2 mount to work in: the hybrid host's unified mount, or a pure v2 host's root. */
const CGROUP2 = layout === "v2"
  ? "/sys/fs/cgroup"
  : layout === "hybrid"
  ? "/sys/fs/cgroup/unified"
  : undefined;

/** Removes an empty cgroup directory; a process that just exited may hold it for a moment. */
async function removeCgroup(dir: string): Promise<void> {
  for (let i = 0;; i++) {
    try {
      Deno.removeSync(dir);
      return;
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return;
      if (!(err instanceof Deno.errors.Busy) || i >= 100) throw err;
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

/** A new cgroup2 directory and a temp dir, both removed after `fn`, even when it fails. */
async function withCgroup2(fn: (cgroup: string, tmp: string) => Promise<void>): Promise<void> {
  const cgroup = `${CGROUP2}/mini-docker-test-dev-${crypto.randomUUID().slice(0, 8)}`;
  Deno.mkdirSync(cgroup);
  const tmp = Deno.makeTempDirSync({ prefix: "mini-docker-dev-" });
  try {
    await fn(cgroup, tmp);
  } finally {
    Deno.removeSync(tmp, { recursive: true });
    // The probe shell has exited and been reaped (it waits for its own children).
    await removeCgroup(cgroup);
  }
}

Deno.test({
  name: "device rules as BPF on a real cgroup2 directory: Docker's default list",
  ignore: CGROUP2 === undefined,
  async fn() {
    await withCgroup2(async (cgroup, tmp) => {
      attachDeviceRules(cgroup, normalizeRules(DOCKER_DEFAULT_RULES));
      // Nodes made outside the cgroup: /dev/mem's numbers, a pts number, a loop device, fuse.
      mknodOutside(`${tmp}/mem`, "c", 1, 1);
      mknodOutside(`${tmp}/pts`, "c", 136, 4000);
      mknodOutside(`${tmp}/loop`, "b", 7, 0);
      mknodOutside(`${tmp}/fuse`, "c", 10, 229);
      const results = await probeDevices([`${cgroup}/cgroup.procs`], [
        { read: "/dev/null" },
        { readWrite: "/dev/null" },
        { read: "/dev/zero" },
        { read: `${tmp}/mem` },
        { write: `${tmp}/mem` },
        { read: `${tmp}/loop` },
        { read: `${tmp}/fuse` },
        { mknod: `${tmp}/mem2`, type: "c", major: 1, minor: 1 },
        { mknod: `${tmp}/loop2`, type: "b", major: 7, minor: 1 },
        { mknod: `${tmp}/fuse2`, type: "c", major: 10, minor: 229 },
        // Allowed by the rules: the open goes through to the driver, which has no pts 4000.
        { read: `${tmp}/pts` },
      ]);
      assert.deepEqual(results.slice(0, 3), ["ok", "ok", "ok"]);
      assert.deepEqual(results.map(deviceVerdict), [
        "allowed",
        "allowed",
        "allowed",
        "denied",
        "denied",
        "denied",
        "denied",
        "allowed",
        "allowed",
        "denied", // the last rule denies fuse, mknod included (v1 cannot: see devices.ts)
        "allowed",
      ]);
      // Outside the cgroup nothing changed.
      const outside = await probeDevices([], [{ read: `${tmp}/mem` }, { read: `${tmp}/loop` }]);
      assert.deepEqual(outside.map(deviceVerdict), ["allowed", "allowed"]);
    });
  },
});

Deno.test({
  name: "device rules as BPF: access bits, last match wins, an allow-all rule ends the list",
  ignore: CGROUP2 === undefined,
  async fn() {
    await withCgroup2(async (cgroup, tmp) => {
      attachDeviceRules(
        cgroup,
        normalizeRules([
          { allow: true, type: "c", major: 1, minor: 3, access: "r" },
          { allow: true, type: "c", major: 1, minor: 5, access: "rw" },
          { allow: false, type: "c", major: 1, minor: 5, access: "w" },
        ]),
      );
      mknodOutside(`${tmp}/null`, "c", 1, 3);
      const results = await probeDevices([`${cgroup}/cgroup.procs`], [
        { read: "/dev/null" },
        { write: "/dev/null" },
        { readWrite: "/dev/null" },
        { read: "/dev/zero" },
        { readWrite: "/dev/zero" },
        { mknod: `${tmp}/null2`, type: "c", major: 1, minor: 3 },
      ]);
      assert.deepEqual(results.map(deviceVerdict), [
        "allowed",
        "denied",
        "denied",
        "allowed",
        "denied",
        "denied",
      ]);
    });
    await withCgroup2(async (cgroup, tmp) => {
      // Deny fuse, then allow all: the allow is last, so fuse is allowed too.
      attachDeviceRules(
        cgroup,
        normalizeRules([{ allow: false, type: "c", major: 10, minor: 229 }, { allow: true }]),
      );
      mknodOutside(`${tmp}/mem`, "c", 1, 1);
      const results = await probeDevices([`${cgroup}/cgroup.procs`], [
        { read: `${tmp}/mem` },
        { mknod: `${tmp}/fuse`, type: "c", major: 10, minor: 229 },
      ]);
      assert.deepEqual(results.map(deviceVerdict), ["allowed", "allowed"]);
    });
  },
});

Deno.test({
  name: "device rules as BPF: a directory that is no cgroup is refused with the step named",
  ignore: CGROUP2 === undefined,
  fn() {
    const tmp = Deno.makeTempDirSync({ prefix: "mini-docker-dev-" });
    try {
      assert.throws(
        () => attachDeviceRules(tmp, normalizeRules(DOCKER_DEFAULT_RULES)),
        (err) =>
          err instanceof UserError &&
          err.message.startsWith(
            `Cannot attach the device rules' BPF program to cgroup ${tmp}: `,
          ),
      );
      assert.throws(
        () => attachDeviceRules(`${tmp}/nope`, []),
        new UserError(
          `Cannot open cgroup ${tmp}/nope to attach its device rules: No such file or directory`,
        ),
      );
    } finally {
      Deno.removeSync(tmp, { recursive: true });
    }
  },
});
