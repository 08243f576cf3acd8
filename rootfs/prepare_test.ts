/**
 * Rootfs preparation, on the real host: the busybox and host-binary rootfs are built from this
 * machine's files and entered with the real `chroot`. Nothing is downloaded: this machine cannot
 * reach dl-cdn.alpinelinux.org, which is exactly what the Alpine tests check (they would need
 * adjusting on a machine with internet access). The checksum check and the extraction (the
 * image store's unpacker) are exercised on small tarballs made here.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { UserError } from "../base/errors.ts";
import { digestHex, sha256Digest } from "../images/digest.ts";
import { gzip, makeTar } from "../tests/helpers/image_tar.ts";
import {
  ALPINE_SHA256,
  buildBusyboxRootfs,
  extractVerifiedTarball,
  isStaticElf,
  parseLdd,
  prepareRootfs,
  verifySha256,
} from "./prepare.ts";
import { assertRootfs, DEFAULT_ROOTFS, defaultRootfs, rootfsStatus } from "./check.ts";

async function withTempDir(fn: (dir: string) => void | Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "mini-docker-rootfs-test-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function chrootSh(root: string, script: string): Promise<{ code: number; out: string }> {
  const res = await new Deno.Command("chroot", {
    args: [root, "/bin/sh", "-c", script],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const out = new TextDecoder().decode(res.stdout) + new TextDecoder().decode(res.stderr);
  return { code: res.code, out };
}

/** Entries of `dir`, to check that a failed prepare left nothing behind. */
function entries(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name).sort();
}

Deno.test("isStaticElf tells the static busybox from a dynamic binary", async () => {
  assert.equal(await isStaticElf("/bin/busybox"), true);
  assert.equal(await isStaticElf("/bin/ls"), false);
  assert.equal(await isStaticElf("/etc/passwd"), false);
});

Deno.test("buildBusyboxRootfs makes /bin/sh, applets, /etc files and a 1777 /tmp", async () => {
  await withTempDir(async (dir) => {
    const root = join(dir, "rootfs");
    const started = performance.now();
    const made = await buildBusyboxRootfs(root);
    const elapsed = performance.now() - started;
    assert.ok(elapsed < 1000, `took ${elapsed.toFixed(0)} ms`);
    assert.equal(made.source, "busybox");
    assert.match(made.detail, /^static busybox \d+\.\d+/);

    const sh = Deno.lstatSync(join(root, "bin/sh"));
    assert.ok(sh.isSymlink, "/bin/sh is a symlink");
    // Relative links resolve inside the rootfs even when looked at from the host.
    assert.equal(Deno.realPathSync(join(root, "bin/sh")), join(root, "bin/busybox"));
    assert.ok((Deno.statSync(join(root, "bin/sh")).mode! & 0o111) !== 0, "/bin/sh executable");
    assert.equal(Deno.realPathSync(join(root, "usr/bin/env")), join(root, "bin/busybox"));
    assert.ok(Deno.lstatSync(join(root, "bin/ls")).isSymlink);

    assert.match(
      Deno.readTextFileSync(join(root, "etc/passwd")),
      /^root:x:0:0:root:\/root:\/bin\/sh$/m,
    );
    assert.match(Deno.readTextFileSync(join(root, "etc/passwd")), /^nobody:x:65534:65534:/m);
    assert.match(Deno.readTextFileSync(join(root, "etc/group")), /^root:x:0:$/m);
    assert.match(Deno.readTextFileSync(join(root, "etc/os-release")), /^ID=mini-docker-busybox$/m);
    assert.equal(Deno.statSync(join(root, "tmp")).mode! & 0o7777, 0o1777);
    assert.equal(Deno.statSync(join(root, "var/tmp")).mode! & 0o7777, 0o1777);
    assert.equal(rootfsStatus(root), "ok");

    const res = await chrootSh(root, "echo ok; id -u; ls -d /proc");
    assert.equal(res.code, 0, res.out);
    assert.equal(res.out, "ok\n0\n/proc\n");
  });
});

Deno.test('prepareRootfs "host" copies binaries and libraries that run under chroot', async () => {
  await withTempDir(async (dir) => {
    const root = join(dir, "host");
    const made = await prepareRootfs(root, { source: "host" });
    assert.equal(made.source, "host");
    assert.equal(made.path, root);
    assert.match(made.detail, /^host binaries \(\d+ programs, \d+ libraries\)$/);
    assert.ok(Deno.statSync(join(root, "bin/sh")).isFile, "/bin/sh is a real file");
    assert.ok(Deno.statSync(join(root, "lib64/ld-linux-x86-64.so.2")).isFile, "loader copied");
    assert.equal(Deno.statSync(join(root, "tmp")).mode! & 0o7777, 0o1777);

    const res = await chrootSh(root, "echo ok; ls /etc; id -un; uname -s");
    assert.equal(res.code, 0, res.out);
    assert.equal(res.out, "ok\ngroup\nos-release\npasswd\nroot\nLinux\n");
    assert.deepEqual(entries(dir), ["host"], "no staging directory left");
  });
});

Deno.test('prepareRootfs "alpine" fails here with a clear UserError and leaves nothing', async () => {
  await withTempDir(async (dir) => {
    const started = performance.now();
    await assert.rejects(
      prepareRootfs(join(dir, "alpine"), { source: "alpine" }),
      (err: unknown) => {
        assert.ok(err instanceof UserError);
        assert.match(
          err.message,
          /^Cannot download Alpine 3\.18\.4 minirootfs from "https:.*": \S/,
        );
        return true;
      },
    );
    assert.ok(performance.now() - started < 16_000);
    assert.deepEqual(entries(dir), [], "nothing at the target, no staging directory");
  });
});

Deno.test('prepareRootfs "auto" falls back to busybox here and says why', async () => {
  await withTempDir(async (dir) => {
    const root = join(dir, "rootfs", "alpine");
    const lines: string[] = [];
    const made = await prepareRootfs(root, { log: (line) => lines.push(line) });
    assert.equal(made.source, "busybox");
    assert.match(made.detail, /^static busybox [\d.]+ \(Alpine download failed: .+\)$/);
    assert.ok(lines.some((l) => l.startsWith("Downloading https://dl-cdn.alpinelinux.org/")));
    assert.equal(rootfsStatus(root), "ok");
    assert.deepEqual(entries(join(dir, "rootfs")), ["alpine"]);
  });
});

Deno.test("prepareRootfs leaves an existing rootfs alone unless forced", async () => {
  await withTempDir(async (dir) => {
    const root = join(dir, "r");
    await buildBusyboxRootfs(root);
    Deno.writeTextFileSync(join(root, "etc/marker"), "mine");

    const again = await prepareRootfs(root, { source: "busybox" });
    assert.equal(again.source, "existing");
    assert.match(
      again.detail,
      /^already prepared \(mini-docker rootfs from static BusyBox [\d.]+\), left alone: use --force to replace it$/,
    );
    assert.equal(Deno.readTextFileSync(join(root, "etc/marker")), "mine");

    const forced = await prepareRootfs(root, { source: "busybox", force: true });
    assert.equal(forced.source, "busybox");
    assert.throws(() => Deno.statSync(join(root, "etc/marker")), Deno.errors.NotFound);
    assert.deepEqual(entries(dir), ["r"], "old rootfs and staging directory removed");

    // A failed forced prepare keeps the old rootfs.
    Deno.writeTextFileSync(join(root, "etc/marker"), "kept");
    await assert.rejects(prepareRootfs(root, { source: "alpine", force: true }), UserError);
    assert.equal(Deno.readTextFileSync(join(root, "etc/marker")), "kept");
    assert.deepEqual(entries(dir), ["r"]);
  });
});

Deno.test("prepareRootfs fills an empty directory but refuses one holding other files", async () => {
  await withTempDir(async (dir) => {
    const empty = join(dir, "empty");
    Deno.mkdirSync(empty);
    assert.equal(rootfsStatus(empty), "empty");
    assert.equal((await prepareRootfs(empty, { source: "busybox" })).source, "busybox");
    assert.equal(rootfsStatus(empty), "ok");

    const junk = join(dir, "junk");
    Deno.mkdirSync(junk);
    Deno.writeTextFileSync(join(junk, "notes.txt"), "hello");
    await assert.rejects(
      prepareRootfs(junk, { source: "busybox" }),
      /^UserError: Rootfs ".*junk" is not empty but has no \/bin\/sh: use --force to replace it$/,
    );
    assert.deepEqual(entries(junk), ["notes.txt"]);
  });
});

Deno.test("the checksum check rejects a wrong file before extracting it", async () => {
  await withTempDir(async (dir) => {
    const tarball = await gzip(makeTar([
      { path: "./", type: "dir", mode: 0o755 },
      { path: "./bin/", type: "dir", mode: 0o755 },
      { path: "./bin/hello", data: "hello\n", mode: 0o755 },
      { path: "./bin/sh", type: "symlink", linkpath: "hello" },
      { path: "./dev/null", type: "chardev", mode: 0o666, devmajor: 1, devminor: 3 },
    ]));
    const dest = join(dir, "dest");
    Deno.mkdirSync(dest);
    const actual = digestHex(sha256Digest(tarball));
    await assert.rejects(
      extractVerifiedTarball(tarball, dest, { sha256: ALPINE_SHA256, label: "small.tar.gz" }),
      new UserError(
        `Checksum mismatch for "small.tar.gz": expected sha256 ${ALPINE_SHA256}, got ${actual}`,
      ),
    );
    assert.deepEqual(entries(dest), [], "nothing extracted");
    assert.throws(() => verifySha256(tarball, "0".repeat(64), "x"), UserError);

    verifySha256(tarball, actual.toUpperCase(), "x");
    await extractVerifiedTarball(tarball, dest, { sha256: actual, label: "small.tar.gz" });
    assert.equal(Deno.readTextFileSync(join(dest, "bin/hello")), "hello\n");
    assert.equal(Deno.statSync(join(dest, "bin/hello")).mode! & 0o7777, 0o755);
    assert.equal(Deno.readLinkSync(join(dest, "bin/sh")), "hello");
    assert.ok(Deno.lstatSync(join(dest, "dev/null")).isCharDevice, "devices are made");
  });
});

Deno.test("extraction refuses an entry that escapes, and a file that is not a tarball", async () => {
  await withTempDir(async (dir) => {
    const escaping = await gzip(makeTar([{ path: "../outside", data: "no" }]));
    const dest = join(dir, "dest");
    Deno.mkdirSync(dest);
    await assert.rejects(
      extractVerifiedTarball(escaping, dest, {
        sha256: digestHex(sha256Digest(escaping)),
        label: "evil.tar.gz",
      }),
      new UserError(`Cannot extract "evil.tar.gz": entry "../outside" escapes the layer root`),
    );
    assert.deepEqual(entries(dir), ["dest"], "nothing written beside the destination");

    const truncated = (await gzip(makeTar([{ path: "a", data: "x".repeat(4096) }]))).slice(0, 40);
    await assert.rejects(
      extractVerifiedTarball(truncated, dest, {
        sha256: digestHex(sha256Digest(truncated)),
        label: "cut.tar.gz",
      }),
      (err: unknown) => {
        assert.ok(err instanceof UserError);
        assert.match(err.message, /^Cannot extract "cut\.tar\.gz": \S/);
        return true;
      },
    );
  });
});

Deno.test("parseLdd reads libraries, the loader and missing libraries", () => {
  const out = [
    "/usr/bin/ls:",
    "\tlinux-vdso.so.1 (0x00007ffd)",
    "\tlibselinux.so.1 => /lib/x86_64-linux-gnu/libselinux.so.1 (0x00007f10)",
    "\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f20)",
    "\t/lib64/ld-linux-x86-64.so.2 (0x00007f30)",
    "/usr/bin/static:",
    "\tnot a dynamic executable",
    "/usr/bin/broken:",
    "\tlibgone.so.3 => not found",
    "\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f20)",
  ].join("\n");
  assert.deepEqual(parseLdd(out), {
    libraries: [
      "/lib/x86_64-linux-gnu/libselinux.so.1",
      "/lib/x86_64-linux-gnu/libc.so.6",
      "/lib64/ld-linux-x86-64.so.2",
    ],
    missing: ["libgone.so.3"],
  });
});

Deno.test("rootfsStatus and assertRootfs name the path and the command", async () => {
  await withTempDir((dir) => {
    assert.equal(rootfsStatus(join(dir, "nope")), "missing");
    Deno.writeTextFileSync(join(dir, "file"), "");
    assert.equal(rootfsStatus(join(dir, "file")), "missing");
    assert.equal(rootfsStatus(dir), "empty"); // a plain file, not executable
    Deno.mkdirSync(join(dir, "bin"));
    Deno.writeTextFileSync(join(dir, "bin/tool"), "#!/bin/sh\n", { mode: 0o755 });
    assert.equal(rootfsStatus(dir), "ok");

    assert.throws(
      () => assertRootfs(join(dir, "nope")),
      new UserError(
        `Rootfs "${join(dir, "nope")}" does not exist: prepare it with "mini-docker rootfs ${
          join(dir, "nope")
        }"`,
      ),
    );
    // The default is relative to the working directory.
    const cwd = Deno.cwd();
    Deno.chdir(dir);
    try {
      assert.throws(
        () => assertRootfs(DEFAULT_ROOTFS),
        /^UserError: Rootfs "rootfs\/alpine" does not exist: prepare it with "mini-docker rootfs"$/,
      );
    } finally {
      Deno.chdir(cwd);
    }
  });
});

Deno.test("defaultRootfs honours MINI_DOCKER_ROOTFS", () => {
  const saved = Deno.env.get("MINI_DOCKER_ROOTFS");
  try {
    Deno.env.delete("MINI_DOCKER_ROOTFS");
    assert.equal(defaultRootfs(), "rootfs/alpine");
    Deno.env.set("MINI_DOCKER_ROOTFS", "/srv/rootfs");
    assert.equal(defaultRootfs(), "/srv/rootfs");
  } finally {
    if (saved === undefined) Deno.env.delete("MINI_DOCKER_ROOTFS");
    else Deno.env.set("MINI_DOCKER_ROOTFS", saved);
  }
});
