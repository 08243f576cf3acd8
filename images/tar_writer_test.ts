import assert from "node:assert/strict";
import { TarReader } from "./tar.ts";
import { type TarHeader, TarWriteError, TarWriter } from "./tar_writer.ts";

/** Writes `entries` into bytes. */
async function write(
  entries: [TarHeader, (Uint8Array | ReadableStream<Uint8Array>)?][],
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const w = new TarWriter(new WritableStream({ write: (c) => void chunks.push(c.slice()) }));
  for (const [h, body] of entries) await w.add(h, body);
  await w.close();
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

const long = `${"d".repeat(120)}/${"n".repeat(90)}`;
const longer = `${"x".repeat(120)}/${"y".repeat(120)}/${"z".repeat(120)}/file`;
const cap = new Uint8Array([1, 0, 0, 2, 0xff, 0xfe, 0, 0x80]);
const ENTRIES: [TarHeader, Uint8Array?][] = [
  [{ path: "dir", type: "dir", mode: 0o1777, uid: 5, gid: 6, mtime: 1234 }],
  [{ path: "dir/file", type: "file", mode: 0o4755 }, new TextEncoder().encode("x".repeat(1000))],
  [{ path: "dir/link", type: "symlink", mode: 0o777, linkpath: "/etc/passwd" }],
  [{ path: "dir/hard", type: "hardlink", mode: 0o644, linkpath: "dir/file" }],
  [{ path: "null", type: "chardev", mode: 0o666, devmajor: 1, devminor: 3 }],
  [{ path: "pipe", type: "fifo", mode: 0o600 }],
  [{ path: long, type: "file", mode: 0o644 }, new Uint8Array(3)],
  [{ path: longer, type: "symlink", mode: 0o777, linkpath: "t".repeat(200) }],
  [{ path: "héllo", type: "file", mode: 0o600, uid: 3_000_000, gid: 70_000, mtime: 1.5 }],
  [{ path: "ping", type: "file", mode: 0o755, xattrs: new Map([["user.note", cap]]) }],
];

Deno.test("tar writer: every type, long and non-ASCII names, big ids, binary xattrs, read back", async () => {
  const bytes = await write(ENTRIES);
  assert.equal(bytes.byteLength % 512, 0);
  const reader = new TarReader(ReadableStream.from([bytes]));
  const got = [];
  for await (const e of reader) {
    let size = 0;
    for await (const c of reader.body()) size += c.byteLength;
    got.push({ ...e, read: size });
  }
  assert.deepEqual(
    got.map((e) => e.path),
    ENTRIES.map(([h]) => h.type === "dir" ? `${h.path}/` : h.path),
  );
  assert.deepEqual(got.map((e) => e.type), ENTRIES.map(([h]) => h.type));
  assert.equal(got[0]!.mode, 0o1777);
  assert.equal(got[0]!.uid, 5);
  assert.equal(got[0]!.mtime, 1234);
  assert.equal(got[1]!.mode, 0o4755);
  assert.equal(got[1]!.read, 1000);
  assert.equal(got[2]!.linkpath, "/etc/passwd");
  assert.equal(got[4]!.devmajor, 1);
  assert.equal(got[4]!.devminor, 3);
  assert.equal(got[7]!.linkpath, "t".repeat(200));
  assert.equal(got[8]!.uid, 3_000_000);
  assert.equal(got[8]!.gid, 70_000);
  assert.equal(got[8]!.mtime, 1.5);
  assert.deepEqual(got[9]!.xattrs.get("user.note"), cap);
});

Deno.test("tar writer: GNU tar lists and extracts what it wrote; the same entries give the same bytes", async () => {
  const bytes = await write(ENTRIES);
  assert.deepEqual(await write(ENTRIES), bytes);
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/a.tar`, bytes);
    const out = await new Deno.Command("tar", {
      args: ["--numeric-owner", "-tvf", `${dir}/a.tar`],
      // UTF-8 names as they are, whatever the caller's locale (CI has none: tar escapes them).
      env: { LC_ALL: "C.UTF-8" },
      stderr: "piped",
    }).output();
    const listing = new TextDecoder().decode(out.stdout);
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    assert.match(listing, /^-rwsr-xr-x 0\/0 +1000 .* dir\/file$/m);
    assert.match(listing, new RegExp(`^-rw-r--r-- .* ${long}$`, "m"));
    assert.match(listing, /^-rw------- 3000000\/70000 .* héllo$/m);
    const x = await new Deno.Command("tar", {
      args: ["-xf", `${dir}/a.tar`, "-C", dir, "--xattrs", "--xattrs-include=*", "ping", longer],
    }).output();
    assert.equal(x.code, 0, new TextDecoder().decode(x.stderr));
    assert.equal(Deno.readLinkSync(`${dir}/${longer}`), "t".repeat(200));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tar writer: a body of the wrong length is refused, streamed or not", async () => {
  await assert.rejects(
    write([[{ path: "f", type: "file", mode: 0o644, size: 4 }, new Uint8Array(3)]]),
    TarWriteError,
  );
  await assert.rejects(
    write([[
      { path: "f", type: "file", mode: 0o644, size: 4 },
      ReadableStream.from([new Uint8Array(5)]),
    ]]),
    /grew past 4 bytes/,
  );
  await assert.rejects(
    write([[
      { path: "f", type: "file", mode: 0o644, size: 4 },
      ReadableStream.from([new Uint8Array(2)]),
    ]]),
    /shrank to 2 of 4 bytes/,
  );
  await assert.rejects(
    write([[{ path: "d", type: "dir", mode: 0o755 }, new Uint8Array(1)]]),
    /only a regular file/,
  );
});
