/**
 * Real workloads under Docker's default confinement: a Debian userland (debootstrap from Debian's
 * mirror, the only package source this machine reaches) whose apt installs a package over the
 * network, as root with the 14 default capabilities and the seccomp profile, and python3. The
 * root filesystem is made once and kept in tests/.cache (git-ignored): about a minute the first
 * time.
 */
import assert from "node:assert/strict";
import { TestEnv } from "./helpers.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const CACHE = new URL("./.cache/debian-bookworm", import.meta.url).pathname;

/** A minimal Debian 12 root filesystem with python3, made by debootstrap. */
async function debianRootfs(): Promise<string> {
  try {
    Deno.statSync(`${CACHE}/usr/bin/python3`);
    return CACHE;
  } catch { /* make it */ }
  const tmp = `${CACHE}.${crypto.randomUUID().slice(0, 8)}`;
  const out = await new Deno.Command("debootstrap", {
    args: [
      "--variant=minbase",
      "--include=python3-minimal",
      "bookworm",
      tmp,
      "http://deb.debian.org/debian",
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw new Error(`debootstrap failed: ${new TextDecoder().decode(out.stderr).slice(-2000)}`);
  }
  Deno.renameSync(tmp, CACHE);
  return CACHE;
}

Deno.test(
  "a Debian userland: apt installs a package, python3 runs, as root and as a user",
  opts,
  async () => {
    const rootfs = await debianRootfs();
    await using t = await TestEnv.create();
    const apt = await t.run([
      "run",
      "--rootfs",
      rootfs,
      "/bin/sh",
      "-c",
      "apt-get update -qq && apt-get install -y -qq --no-install-recommends hello >/dev/null && hello",
    ]);
    assert.equal(apt.code, 0, apt.stderr);
    assert.equal(apt.stdout, "Hello, world!\n");
    // The base rootfs is unchanged: the package went to the container's own layer.
    assert.throws(() => Deno.statSync(`${rootfs}/usr/bin/hello`));
    const py = await t.run([
      "run",
      "--rootfs",
      rootfs,
      "-u",
      "nobody",
      "python3",
      "-c",
      "import os, socket; print(os.getuid(), socket.gethostname() != '')",
    ]);
    assert.equal(py.stdout, "65534 True\n", py.stderr);
  },
);
