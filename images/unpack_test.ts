import assert from "node:assert/strict";
import { cleanPath, unpackLayer } from "./unpack.ts";
import { OPAQUE_XATTR } from "./whiteout.ts";
import { lgetxattr } from "../base/libc.ts";
import { makeTar, type TarSpec } from "../tests/helpers/image_tar.ts";

function stream(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new Blob([bytes as Uint8Array<ArrayBuffer>]).stream();
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "unpack-test-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function unpack(entries: TarSpec[], root: string) {
  return await unpackLayer(stream(makeTar(entries)), root);
}

Deno.test("unpack: types, ownership, modes, mtimes", async () => {
  await withDir(async (dir) => {
    const root = `${dir}/layer`;
    await Deno.mkdir(root);
    const stats = await unpack([
      { path: "./", type: "dir", mode: 0o755 },
      { path: "tmp/", type: "dir", mode: 0o1777, mtime: 1000 },
      { path: "bin/su", data: "su", mode: 0o4755, uid: 0, gid: 0, mtime: 2000 },
      { path: "home/user/f", data: "hello", mode: 0o640, uid: 1000, gid: 1001 },
      { path: "home/user/link", type: "symlink", linkpath: "../../etc/x", uid: 1000, gid: 1000 },
      { path: "home/user/hard", type: "hardlink", linkpath: "/home/user/f" },
      { path: "dev/null", type: "chardev", devmajor: 1, devminor: 3, mode: 0o666 },
      { path: "dev/loop0", type: "blockdev", devmajor: 7, devminor: 0, mode: 0o660 },
      { path: "run/fifo", type: "fifo", mode: 0o600 },
    ], root);
    assert.equal(stats.size, 7);
    const tmp = Deno.lstatSync(`${root}/tmp`);
    assert.equal(tmp.mode! & 0o7777, 0o1777);
    assert.equal(tmp.mtime!.getTime(), 1000_000);
    const su = Deno.lstatSync(`${root}/bin/su`);
    assert.equal(su.mode! & 0o7777, 0o4755);
    assert.equal(su.mtime!.getTime(), 2000_000);
    const f = Deno.lstatSync(`${root}/home/user/f`);
    assert.deepEqual([f.uid, f.gid, f.mode! & 0o777, f.nlink], [1000, 1001, 0o640, 2]);
    assert.equal(Deno.readTextFileSync(`${root}/home/user/hard`), "hello");
    const link = Deno.lstatSync(`${root}/home/user/link`);
    assert.ok(link.isSymlink);
    assert.equal(link.uid, 1000);
    assert.equal(Deno.readLinkSync(`${root}/home/user/link`), "../../etc/x");
    const nul = Deno.lstatSync(`${root}/dev/null`);
    assert.ok(nul.isCharDevice);
    assert.equal(nul.rdev, 259); // makedev(1, 3)
    assert.ok(Deno.lstatSync(`${root}/dev/loop0`).isBlockDevice);
    assert.ok(Deno.lstatSync(`${root}/run/fifo`).isFifo);
  });
});

Deno.test("unpack: whiteouts become 0:0 char devices, opaque dirs get the xattr", async () => {
  await withDir(async (dir) => {
    const root = `${dir}/layer`;
    await Deno.mkdir(root);
    await unpack([
      { path: "etc/.wh.motd", data: "" },
      { path: "var/cache/.wh..wh..opq", data: "" },
      { path: "var/cache/new", data: "n" },
      { path: "replaced", data: "old" },
      { path: "replaced", type: "dir" },
      { path: "replaced/inside", data: "i" },
    ], root);
    const wh = Deno.lstatSync(`${root}/etc/motd`);
    assert.ok(wh.isCharDevice);
    assert.equal(wh.rdev, 0);
    assert.equal(
      new TextDecoder().decode(lgetxattr(`${root}/var/cache`, OPAQUE_XATTR) ?? undefined),
      "y",
    );
    assert.equal(Deno.readTextFileSync(`${root}/var/cache/new`), "n");
    assert.equal(Deno.readTextFileSync(`${root}/replaced/inside`), "i");
  });
});

Deno.test("unpack: trusted.overlay xattrs from the image are ignored", async () => {
  await withDir(async (dir) => {
    await unpack([
      { path: "d", type: "dir", xattrs: { "trusted.overlay.redirect": "/etc", "user.ok": "1" } },
    ], dir);
    assert.equal(lgetxattr(`${dir}/d`, "trusted.overlay.redirect"), null);
    assert.equal(new TextDecoder().decode(lgetxattr(`${dir}/d`, "user.ok")!), "1");
  });
});

Deno.test("unpack: cleanPath", () => {
  assert.deepEqual(cleanPath("./a//b/./c/"), ["a", "b", "c"]);
  assert.deepEqual(cleanPath("/etc/passwd"), ["etc", "passwd"]);
  assert.deepEqual(cleanPath("./"), []);
  assert.throws(() => cleanPath("a/../../b"), /escapes the layer root/);
});

Deno.test("unpack: entries that escape the root are refused, nothing written outside", async () => {
  const attacks: Array<[string, TarSpec[], RegExp]> = [
    ["dot-dot", [{ path: "../escaped", data: "x" }], /escapes the layer root/],
    ["nested dot-dot", [{ path: "a/../../escaped", data: "x" }], /escapes the layer root/],
    [
      "write through a symlink",
      [
        { path: "evil", type: "symlink", linkpath: "OUTSIDE" },
        { path: "evil/escaped", data: "x" },
      ],
      /goes through the symbolic link "evil"/,
    ],
    [
      "write through a relative symlink",
      [
        { path: "evil", type: "symlink", linkpath: ".." },
        { path: "evil/escaped", data: "x" },
      ],
      /goes through the symbolic link "evil"/,
    ],
    [
      "hard link out of the root",
      [{ path: "h", type: "hardlink", linkpath: "../outside/secret" }],
      /escapes the layer root/,
    ],
    [
      "hard link through a symlink",
      [
        { path: "evil", type: "symlink", linkpath: "OUTSIDE" },
        { path: "h", type: "hardlink", linkpath: "evil/secret" },
      ],
      /goes through the symbolic link "evil"/,
    ],
    [
      "whiteout through a symlink",
      [
        { path: "evil", type: "symlink", linkpath: "OUTSIDE" },
        { path: "evil/.wh.secret", data: "" },
      ],
      /goes through the symbolic link "evil"/,
    ],
    ["whiteout of the parent", [{ path: "a/.wh..", data: "" }], /names no file/],
  ];
  for (const [name, entries, error] of attacks) {
    await withDir(async (dir) => {
      const outside = `${dir}/outside`;
      await Deno.mkdir(outside);
      await Deno.writeTextFile(`${outside}/secret`, "secret");
      const root = `${dir}/store/layer`;
      await Deno.mkdir(root, { recursive: true });
      const fixed = entries.map((e) => e.linkpath === "OUTSIDE" ? { ...e, linkpath: outside } : e);
      await assert.rejects(unpack(fixed, root), error, name);
      assert.deepEqual([...Deno.readDirSync(outside)].map((e) => e.name), ["secret"], name);
      assert.equal(Deno.readTextFileSync(`${outside}/secret`), "secret", name);
      assert.deepEqual(
        [...Deno.readDirSync(dir)].map((e) => e.name).sort(),
        ["outside", "store"],
        name,
      );
      assert.deepEqual([...Deno.readDirSync(`${dir}/store`)].map((e) => e.name), ["layer"], name);
    });
  }
});

Deno.test("unpack: a directory replaced by a symlink does not redirect its mtime", async () => {
  await withDir(async (dir) => {
    const secret = `${dir}/secret`;
    await Deno.writeTextFile(secret, "secret");
    const before = Deno.statSync(secret).mtime!.getTime();
    const root = `${dir}/layer`;
    await Deno.mkdir(root);
    await unpack([
      { path: "d/", type: "dir", mtime: 1 },
      { path: "d", type: "symlink", linkpath: secret, mtime: 2 },
    ], root);
    assert.equal(Deno.statSync(secret).mtime!.getTime(), before);
    assert.equal(Deno.lstatSync(`${root}/d`).mtime!.getTime(), 2000);
  });
});
