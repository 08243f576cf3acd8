import assert from "node:assert/strict";
import { lookupUser, readFromLayers } from "./user.ts";
import { unpackLayer } from "./unpack.ts";
import { makeTar, type TarSpec } from "../tests/helpers/image_tar.ts";

/** Unpacks layers (bottom-most first) into a temp dir; gives their dirs top-most first. */
async function withLayers(layers: TarSpec[][], fn: (dirs: string[]) => void): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "user-test-" });
  try {
    const dirs: string[] = [];
    for (const [i, entries] of layers.entries()) {
      const d = `${dir}/${i}`;
      await Deno.mkdir(d);
      await unpackLayer(new Blob([makeTar(entries) as Uint8Array<ArrayBuffer>]).stream(), d);
      dirs.unshift(d);
    }
    fn(dirs);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const PASSWD = [
  "root:x:0:0:root:/root:/bin/sh",
  "# a comment",
  "daemon:x:1:1::/:/sbin/nologin",
  "web:x:1000:1001:web:/home/web:/bin/sh",
  "",
].join("\n");
const GROUP = [
  "root:x:0:root",
  "bin:x:1:root,daemon",
  "web:x:1001:",
  "wheel:x:10:root,web",
  "audio:x:29:web,other",
  "",
].join("\n");

Deno.test("lookupUser: names, ids, groups, supplementary groups", async () => {
  await withLayers([[
    { path: "etc/passwd", data: PASSWD },
    { path: "etc/group", data: GROUP },
  ]], (layers) => {
    const root = { uid: 0, gid: 0, additionalGids: [0, 1, 10], home: "/root" };
    assert.deepEqual(lookupUser(layers, ""), root);
    assert.deepEqual(lookupUser(layers, "root"), root);
    const web = { uid: 1000, gid: 1001, additionalGids: [10, 29], home: "/home/web" };
    assert.deepEqual(lookupUser(layers, "web"), web);
    assert.deepEqual(lookupUser(layers, "1000"), web);
    assert.deepEqual(lookupUser(layers, "daemon"), {
      uid: 1,
      gid: 1,
      additionalGids: [1],
      home: "/",
    });
    assert.deepEqual(lookupUser(layers, "web:audio"), {
      uid: 1000,
      gid: 29,
      additionalGids: [],
      home: "/home/web",
    });
    assert.deepEqual(lookupUser(layers, "web:4242"), {
      uid: 1000,
      gid: 4242,
      additionalGids: [],
      home: "/home/web",
    });
    assert.deepEqual(lookupUser(layers, "4242"), { uid: 4242, gid: 0, additionalGids: [] });
    assert.deepEqual(lookupUser(layers, "4242:4343"), { uid: 4242, gid: 4343, additionalGids: [] });
    assert.throws(
      () => lookupUser(layers, "nobody"),
      /^UserError: Cannot find user "nobody": no matching entries in passwd file$/,
    );
    assert.throws(
      () => lookupUser(layers, "web:staff"),
      /^UserError: Cannot find group "staff": no matching entries in group file$/,
    );
  });
});

Deno.test("lookupUser: no passwd file: numeric ids only", async () => {
  await withLayers([[{ path: "bin/x", data: "" }]], (layers) => {
    assert.deepEqual(lookupUser(layers, "123:456"), { uid: 123, gid: 456, additionalGids: [] });
    assert.throws(() => lookupUser(layers, "web"), /Cannot find user "web"/);
  });
});

Deno.test("readFromLayers: top-most wins, whiteouts and opaque dirs hide lower files", async () => {
  await withLayers([
    [
      { path: "etc/passwd", data: "bottom" },
      { path: "etc/group", data: "bottom" },
      { path: "var/lib/x", data: "bottom" },
      { path: "opt/y", data: "bottom" },
    ],
    [
      { path: "etc/passwd", data: "middle" },
      { path: "etc/.wh.group", data: "" },
      { path: "var/lib/.wh..wh..opq", data: "" },
      { path: "var/lib/new", data: "middle" },
      { path: ".wh.opt", data: "" },
    ],
    [{ path: "etc/hostname", data: "top" }],
  ], (layers) => {
    assert.equal(readFromLayers(layers, "etc/passwd"), "middle");
    assert.equal(readFromLayers(layers, "etc/hostname"), "top");
    assert.equal(readFromLayers(layers, "etc/group"), null);
    assert.equal(readFromLayers(layers, "var/lib/x"), null);
    assert.equal(readFromLayers(layers, "var/lib/new"), "middle");
    assert.equal(readFromLayers(layers, "opt/y"), null);
    assert.equal(readFromLayers(layers, "etc/none"), null);
  });
});
