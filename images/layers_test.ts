import assert from "node:assert/strict";
import { unpackStream } from "./layers.ts";
import { sha256Digest } from "./digest.ts";
import { gzip, makeTar } from "../tests/helpers/image_tar.ts";
import { zstdCompressSync } from "node:zlib";

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "layers-test-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function stream(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new Blob([bytes as Uint8Array<ArrayBuffer>]).stream();
}

Deno.test("layers: gzip, zstd and plain tar give the same diff id and files", async () => {
  const tar = makeTar([{ path: "a/b", data: "hello" }, { path: "big", data: "z".repeat(300_000) }]);
  const gz = await gzip(tar);
  const zst = new Uint8Array(zstdCompressSync(tar));
  for (const [name, bytes] of [["plain", tar], ["gzip", gz], ["zstd", zst]] as const) {
    await withDir(async (dir) => {
      const r = await unpackStream(stream(bytes), dir);
      assert.equal(r.error, undefined, name);
      assert.equal(r.digest, sha256Digest(bytes), name);
      assert.equal(r.diffId, sha256Digest(tar), name);
      assert.equal(r.bytes, bytes.byteLength);
      assert.equal(await Deno.readTextFile(`${dir}/a/b`), "hello");
    });
  }
});

Deno.test("layers: a failed unpack still reads the whole blob for its digest", async () => {
  const bad = makeTar([{ path: "../x", data: "x" }, { path: "after", data: "y".repeat(5000) }]);
  await withDir(async (dir) => {
    const r = await unpackStream(stream(await gzip(bad)), dir);
    assert.match(String(r.error), /escapes the layer root/);
    assert.equal(r.diffId, undefined);
    assert.equal(r.digest, sha256Digest(await gzip(bad)));
  });
});

Deno.test("layers: unsupported compression, bad zstd, oversize and stalled downloads", async () => {
  await withDir(async (dir) => {
    const xz = new Uint8Array([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0, 0]);
    await assert.rejects(unpackStream(stream(xz), dir), /xz compression is not supported/);
    // A damaged zstd stream: the unpacking fails, the digest of what came is still known.
    const zstd = new Uint8Array([0x28, 0xb5, 0x2f, 0xfd, 9, 9, 9, 9, 9, 9]);
    const r = await unpackStream(stream(zstd), dir);
    assert.match(String(r.error), /Zstd decompress error/);
    assert.equal(r.diffId, undefined);
    assert.equal(r.digest, sha256Digest(zstd));
    const tar = makeTar([{ path: "f", data: "z".repeat(3000) }]);
    await assert.rejects(unpackStream(stream(tar), dir, { maxBytes: 100 }), /larger than the 100/);
  });
  await withDir(async (dir) => {
    const stalled = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(makeTar([{ path: "f", data: "x" }]).subarray(0, 512));
      },
    });
    await assert.rejects(
      unpackStream(stalled, dir, { idleTimeoutMs: 100 }),
      /no data received for 0.1 s/,
    );
  });
});
