import assert from "node:assert/strict";
import { unpackStream } from "./layers.ts";
import { sha256Digest } from "./digest.ts";
import { gzip, makeTar } from "../tests/helpers/image_tar.ts";

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

Deno.test("layers: gzip and plain tar give the same diff id and files", async () => {
  const tar = makeTar([{ path: "a/b", data: "hello" }]);
  const gz = await gzip(tar);
  for (const [name, bytes] of [["plain", tar], ["gzip", gz]] as const) {
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

Deno.test("layers: unsupported compression, oversize and stalled downloads are errors", async () => {
  await withDir(async (dir) => {
    const zstd = new Uint8Array([0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0]);
    await assert.rejects(unpackStream(stream(zstd), dir), /zstd-compressed layers/);
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
