import assert from "node:assert/strict";
import { parseMountOptions, secureJoin } from "./init.ts";
import { MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY, MS_REC } from "../base/libc.ts";

Deno.test("mount options split into flags and filesystem data", () => {
  assert.deepEqual(parseMountOptions(["nosuid", "noexec", "mode=755", "size=65536k"]), {
    flags: MS_NOSUID | MS_NOEXEC,
    data: "mode=755,size=65536k",
  });
  assert.deepEqual(parseMountOptions(["rbind", "ro", "nodev"]), {
    flags: MS_BIND | MS_REC | MS_RDONLY | MS_NODEV,
    data: "",
  });
  assert.equal(parseMountOptions(["ro", "rw"]).flags, 0);
});

Deno.test("secureJoin keeps symlinks inside the root", async () => {
  const root = await Deno.makeTempDir();
  try {
    Deno.mkdirSync(`${root}/etc`);
    Deno.mkdirSync(`${root}/real`);
    Deno.symlinkSync("/etc/shadow", `${root}/etc/hostname`); // absolute: resolved in root
    Deno.symlinkSync("../../../../..", `${root}/up`); // climbs: clamped at root
    Deno.symlinkSync("real", `${root}/rel`);
    assert.equal(secureJoin(root, "/etc/hostname"), `${root}/etc/shadow`);
    assert.equal(secureJoin(root, "/up/etc/passwd"), `${root}/etc/passwd`);
    assert.equal(secureJoin(root, "/rel/x"), `${root}/real/x`);
    assert.equal(secureJoin(root, "/../../x"), `${root}/x`);
    assert.equal(secureJoin(root, "/missing/dir"), `${root}/missing/dir`);
    Deno.symlinkSync("loop", `${root}/loop`);
    assert.throws(() => secureJoin(root, "/loop"), /too many levels of symbolic links/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
