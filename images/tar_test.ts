import assert from "node:assert/strict";
import { type TarEntry, TarError, TarReader } from "./tar.ts";
import { concat, gzip, makeTar } from "../tests/helpers/image_tar.ts";

/** Streams bytes in small, odd-sized chunks so entries straddle chunk boundaries. */
function chunked(bytes: Uint8Array, size = 333): ReadableStream<Uint8Array> {
  let off = 0;
  return new ReadableStream({
    pull(controller) {
      if (off >= bytes.byteLength) return controller.close();
      controller.enqueue(bytes.slice(off, off + size));
      off += size;
    },
  });
}

async function readAll(bytes: Uint8Array): Promise<Array<TarEntry & { data: string }>> {
  const reader = new TarReader(chunked(bytes));
  const out: Array<TarEntry & { data: string }> = [];
  for await (const entry of reader) {
    const parts: Uint8Array[] = [];
    for await (const chunk of reader.body()) parts.push(chunk.slice());
    out.push({ ...entry, data: new TextDecoder().decode(concat(parts)) });
  }
  return out;
}

Deno.test("tar: reads every entry type with its metadata", async () => {
  const entries = await readAll(makeTar([
    { path: "dir/", type: "dir", mode: 0o1777, uid: 5, gid: 6, mtime: 1234 },
    { path: "dir/file", data: "x".repeat(1000), mode: 0o4755 },
    { path: "dir/link", type: "symlink", linkpath: "/etc/passwd" },
    { path: "dir/hard", type: "hardlink", linkpath: "dir/file" },
    { path: "null", type: "chardev", devmajor: 1, devminor: 3, mode: 0o666 },
    { path: "sda", type: "blockdev", devmajor: 8, devminor: 0 },
    { path: "pipe", type: "fifo" },
  ]));
  assert.deepEqual(entries.map((e) => [e.path, e.type, e.size]), [
    ["dir/", "dir", 0],
    ["dir/file", "file", 1000],
    ["dir/link", "symlink", 0],
    ["dir/hard", "hardlink", 0],
    ["null", "chardev", 0],
    ["sda", "blockdev", 0],
    ["pipe", "fifo", 0],
  ]);
  assert.equal(entries[0]!.mode, 0o1777);
  assert.equal(entries[0]!.uid, 5);
  assert.equal(entries[0]!.gid, 6);
  assert.equal(entries[0]!.mtime, 1234);
  assert.equal(entries[1]!.mode, 0o4755);
  assert.equal(entries[1]!.data, "x".repeat(1000));
  assert.equal(entries[2]!.linkpath, "/etc/passwd");
  assert.equal(entries[4]!.devmajor, 1);
  assert.equal(entries[4]!.devminor, 3);
});

Deno.test("tar: pax and GNU long names and link targets", async () => {
  const long = `${"d".repeat(120)}/${"f".repeat(150)}`;
  for (const longNames of ["pax", "gnu"] as const) {
    const entries = await readAll(makeTar([
      { path: long, data: "hello" },
      { path: "l", type: "symlink", linkpath: long },
      { path: "after", data: "next" },
    ], { longNames }));
    assert.equal(entries[0]!.path, long, longNames);
    assert.equal(entries[0]!.data, "hello");
    assert.equal(entries[1]!.linkpath, long);
    assert.equal(entries[2]!.path, "after", "a long name applies to one entry only");
  }
});

Deno.test("tar: pax xattrs, unread bodies skipped, trailing bytes drained", async () => {
  const tar = concat([
    makeTar([
      { path: "a", data: "A".repeat(700), xattrs: { "security.capability": "cap" } },
      { path: "b", data: "B" },
    ]),
    new Uint8Array(4096), // extra zero padding, as tar tools write
  ]);
  let pulled = 0;
  const source = chunked(tar, 100).pipeThrough(
    new TransformStream({
      transform(c, ctl) {
        pulled += c.byteLength;
        ctl.enqueue(c);
      },
    }),
  );
  const reader = new TarReader(source);
  const names: string[] = [];
  for await (const entry of reader) {
    names.push(entry.path);
    if (entry.path === "a") {
      assert.equal(new TextDecoder().decode(entry.xattrs.get("security.capability")), "cap");
    }
  }
  assert.deepEqual(names, ["a", "b"]);
  assert.equal(pulled, tar.byteLength, "the whole stream is read, for the digest");
});

Deno.test("tar: truncated and corrupt archives are errors", async () => {
  const tar = makeTar([{ path: "a", data: "x".repeat(2000) }]);
  await assert.rejects(readAll(tar.slice(0, 1024)), TarError);
  const bad = tar.slice();
  bad[0] = 0x41; // breaks the checksum
  await assert.rejects(readAll(bad), /checksum/);
  await assert.rejects(readAll(await gzip(tar)), TarError, "compressed input is not a tar");
});
