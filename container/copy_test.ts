/**
 * A copy thread's confinement without a container: pivoted into a host directory, every path it
 * resolves (absolute symlinks, `..`) stays in that directory; and it refuses a directory that is
 * not the one the parent chose. Containers are tried by tests/cp_test.ts.
 */
import assert from "node:assert/strict";
import { CopyThread } from "./copy.ts";
import { directoryIdentity } from "./copy_fs.ts";

Deno.test("a copy thread in a directory resolves every path inside it", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    Deno.mkdirSync(`${dir}/root/etc`, { recursive: true });
    Deno.writeTextFileSync(`${dir}/root/etc/passwd`, "inside\n");
    Deno.symlinkSync("/etc", `${dir}/root/abs`);
    Deno.symlinkSync("../../../../..", `${dir}/root/up`);
    using thread = await CopyThread.start({
      kind: "dir",
      path: `${dir}/root`,
      identity: directoryIdentity(`${dir}/root`),
    });
    for (const path of ["/abs/passwd", "/up/etc/passwd", "/../../etc/passwd"]) {
      assert.deepEqual(
        await thread.job({ op: "stat", path, follow: true }),
        { isDir: false, isSymlink: false },
        path,
      );
      const found = await thread.job({ op: "destination", path }) as { real: string };
      assert.equal(found.real, "/etc/passwd", path);
    }
    // What is not inside is not found, though the host has it.
    assert.equal(await thread.job({ op: "stat", path: "/abs/hostname", follow: true }), null);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("a copy thread refuses a directory that is not the one chosen", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    Deno.mkdirSync(`${dir}/chosen`);
    Deno.mkdirSync(`${dir}/other`);
    const chosen = directoryIdentity(`${dir}/chosen`);
    // The path names another directory by the time the thread binds it.
    await assert.rejects(
      () => CopyThread.start({ kind: "dir", path: `${dir}/other`, identity: chosen }),
      /changed while it was copied/,
    );
    // openat2 follows no symlink: a path through one has no identity.
    Deno.symlinkSync(`${dir}/chosen`, `${dir}/link`);
    assert.throws(() => directoryIdentity(`${dir}/link`), /openat2/);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
