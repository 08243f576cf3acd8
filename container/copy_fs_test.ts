/**
 * copy_fs.ts on its own, on this thread and a temporary directory: what an archive holds, and
 * the rules of extraction (nothing through a symlink, no `..`, no hard link out, files replaced
 * whole, what was made removed again on a refusal). The confinement of its thread is tested by
 * tests/cp_test.ts with real containers.
 */
import assert from "node:assert/strict";
import * as libc from "../base/libc.ts";
import { archive, extract } from "./copy_fs.ts";
import { TarWriter } from "../images/tar_writer.ts";
import type { TarHeader } from "../images/tar_writer.ts";
import { TarReader } from "../images/tar.ts";

/** A tar archive of `entries` in a file, opened for reading: its descriptor. */
async function archiveFd(dir: string, entries: [TarHeader, string?][]): Promise<number> {
  const path = `${dir}/in.tar`;
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  const tar = new TarWriter(file.writable);
  for (const [header, body] of entries) {
    await tar.add(
      body === undefined ? header : { ...header, size: body.length },
      body === undefined ? undefined : new TextEncoder().encode(body),
    );
  }
  await tar.close();
  return libc.open(path, libc.O_RDONLY | libc.O_CLOEXEC);
}

async function extracted(dir: string, entries: [TarHeader, string?][], keepOwners = false) {
  Deno.mkdirSync(`${dir}/out`, { recursive: true });
  const fd = await archiveFd(dir, entries);
  try {
    return await extract({ dir: `${dir}/out`, fd, keepOwners });
  } finally {
    libc.close(fd);
  }
}

function names(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name).sort();
}

Deno.test("extract: files, directories, links, owners with -a only", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    await extracted(dir, [
      [{ path: "d", type: "dir", mode: 0o750, uid: 5, gid: 6 }],
      [{ path: "d/f", type: "file", mode: 0o4755, uid: 5, gid: 6, mtime: 1000 }, "data"],
      [{ path: "d/l", type: "symlink", mode: 0o777, linkpath: "/etc/passwd" }],
      [{ path: "d/h", type: "hardlink", mode: 0o644, linkpath: "d/f" }],
    ]);
    const f = Deno.statSync(`${dir}/out/d/f`);
    assert.equal(Deno.readTextFileSync(`${dir}/out/d/f`), "data");
    assert.equal(f.mode! & 0o7777, 0o4755);
    assert.equal(f.uid, 0, "no chown without -a");
    assert.equal(f.mtime!.getTime(), 1_000_000);
    assert.equal(f.nlink, 2);
    assert.equal(Deno.readLinkSync(`${dir}/out/d/l`), "/etc/passwd");
    assert.equal(Deno.statSync(`${dir}/out/d`).mode! & 0o777, 0o750);
    Deno.removeSync(`${dir}/out`, { recursive: true });
    await extracted(dir, [[{ path: "f", type: "file", mode: 0o640, uid: 5, gid: 6 }, "x"]], true);
    const owned = Deno.statSync(`${dir}/out/f`);
    assert.deepEqual([owned.uid, owned.gid, owned.mode! & 0o777], [5, 6, 0o640]);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("extract: an existing file is replaced whole, never written through", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    Deno.mkdirSync(`${dir}/out`);
    // A symlink where the file goes: replaced by the file, its target untouched.
    Deno.writeTextFileSync(`${dir}/target`, "untouched");
    Deno.symlinkSync(`${dir}/target`, `${dir}/out/f`);
    Deno.writeTextFileSync(`${dir}/out/g`, "old, and longer than the new");
    await extracted(dir, [
      [{ path: "f", type: "file", mode: 0o644 }, "new"],
      [{ path: "g", type: "file", mode: 0o644 }, "new"],
    ]);
    assert.equal(Deno.readTextFileSync(`${dir}/target`), "untouched");
    assert.ok(Deno.lstatSync(`${dir}/out/f`).isFile);
    assert.equal(Deno.readTextFileSync(`${dir}/out/g`), "new");
    assert.deepEqual(names(`${dir}/out`), ["f", "g"], "no temporary file left");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("extract refuses escapes and removes what it made", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    const refused: [TarHeader, string?][][] = [
      [[{ path: "ok", type: "file", mode: 0o644 }, "1"], [
        { path: "../escaped", type: "file", mode: 0o644 },
        "x",
      ]],
      [[{ path: "ok", type: "dir", mode: 0o755 }], [
        { path: "esc", type: "symlink", mode: 0o777, linkpath: dir },
      ], [{ path: "esc/escaped", type: "file", mode: 0o644 }, "x"]],
      [[{ path: "ok/x", type: "file", mode: 0o644 }, "1"], [
        { path: "hl", type: "hardlink", mode: 0o644, linkpath: "../target" },
      ]],
      [[{ path: "ok", type: "file", mode: 0o644 }, "1"], [
        { path: "hl", type: "hardlink", mode: 0o644, linkpath: "not/in/archive" },
      ]],
    ];
    Deno.writeTextFileSync(`${dir}/target`, "host file");
    for (const entries of refused) {
      await assert.rejects(() => extracted(dir, entries));
      assert.deepEqual(names(`${dir}/out`), [], JSON.stringify(entries.map((e) => e[0].path)));
    }
    assert.deepEqual(names(dir), ["in.tar", "out", "target"]);
    // A directory never replaces a file, nor a file a directory (Docker's cp rules).
    Deno.mkdirSync(`${dir}/out/d`);
    Deno.writeTextFileSync(`${dir}/out/f`, "kept");
    await assert.rejects(() => extracted(dir, [[{ path: "d", type: "file", mode: 0o644 }, "x"]]));
    await assert.rejects(() => extracted(dir, [[{ path: "f", type: "dir", mode: 0o755 }]]));
    assert.equal(Deno.readTextFileSync(`${dir}/out/f`), "kept");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("archive: the tree as tar entries; links kept as links; a top name, or none", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    Deno.mkdirSync(`${dir}/src/sub`, { recursive: true });
    Deno.writeTextFileSync(`${dir}/src/sub/f`, "content");
    Deno.linkSync(`${dir}/src/sub/f`, `${dir}/src/h`);
    Deno.symlinkSync("/", `${dir}/src/root`);
    const list = async (top: string, follow = false, path = `${dir}/src`) => {
      const fd = libc.open(
        `${dir}/out.tar`,
        libc.O_WRONLY | libc.O_CREAT | libc.O_CLOEXEC | 0o1000,
        0o600,
      );
      try {
        await archive({ path, follow, top, fd });
      } finally {
        libc.close(fd);
      }
      const out: string[] = [];
      const tar = new TarReader((await Deno.open(`${dir}/out.tar`)).readable);
      for await (const e of tar) {
        out.push(`${e.type} ${e.path}${e.linkpath ? ` -> ${e.linkpath}` : ""}`);
      }
      return out;
    };
    assert.deepEqual(await list("src"), [
      "dir src/",
      "file src/h",
      "symlink src/root -> /",
      "dir src/sub/",
      "hardlink src/sub/f -> src/h",
    ]);
    assert.deepEqual(await list(""), [
      "file h",
      "symlink root -> /",
      "dir sub/",
      "hardlink sub/f -> h",
    ]);
    // -L: the link at the top is followed, under its own name.
    Deno.symlinkSync(`${dir}/src/sub`, `${dir}/link`);
    assert.deepEqual(await list("link", true, `${dir}/link`), ["dir link/", "file link/f"]);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
