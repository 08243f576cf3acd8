/**
 * Images end to end, without the internet: a real registry (Debian's docker-registry) on
 * loopback, images built here from the host's static busybox and pushed over plain HTTP, then
 * pulled, checked through a real overlayfs mount, imported, listed and removed.
 */

import { processStartTime } from "../container/state.ts";
import assert from "node:assert/strict";
import { UserError } from "../base/errors.ts";
import { pullCommand } from "../cmd/pull.ts";
import { imagesCommand } from "../cmd/images.ts";
import { importCommand } from "../cmd/import.ts";
import { rmiCommand } from "../cmd/rmi.ts";
import { ImageStore, lookupUser, pullImage, resolveImage } from "../images/mod.ts";
import type { Progress } from "../images/progress.ts";
import { concat, gzip, makeTar } from "./helpers/image_tar.ts";
import {
  busyboxRootfs,
  type Descriptor,
  freePort,
  sha256,
  SlowProxy,
  TestRegistry,
} from "./helpers/image_registry.ts";

/** Incompressible bytes (getRandomValues gives at most 64 KiB a call). */
function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(out.subarray(i, i + 65536));
  return out;
}

const silent: Progress = { status() {}, layer() {}, bytes() {}, close() {} };

/** A temp data root and run root for one test; the env is restored afterwards. */
async function withStore(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "mini-docker-images-" });
  const saved = ["MINI_DOCKER_ROOT", "MINI_DOCKER_RUNROOT"].map((k) => [k, Deno.env.get(k)]);
  Deno.env.set("MINI_DOCKER_ROOT", `${dir}/lib`);
  Deno.env.set("MINI_DOCKER_RUNROOT", `${dir}/run`);
  try {
    await fn(dir);
  } finally {
    for (const [k, v] of saved) v === undefined ? Deno.env.delete(k!) : Deno.env.set(k!, v);
    await Deno.remove(dir, { recursive: true });
  }
}

async function sh(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return text;
}

/** Mounts the layers (top-most first) as a read-only overlay, runs fn, unmounts. */
async function withOverlay(layers: string[], fn: (root: string) => Promise<void>): Promise<void> {
  const mnt = await Deno.makeTempDir({ prefix: "mini-docker-overlay-" });
  try {
    await sh("mount", ["-t", "overlay", "overlay", "-o", `lowerdir=${layers.join(":")}`, mnt]);
    try {
      await fn(mnt);
    } finally {
      await sh("umount", [mnt]);
    }
  } finally {
    await Deno.remove(mnt);
  }
}

/** `pullImage(ref)` in another process sharing the test's data root. */
async function spawnPull(
  dir: string,
  ref: string,
  output: "piped" | "null",
): Promise<Deno.ChildProcess> {
  const script = `${dir}/pull-${crypto.randomUUID()}.ts`;
  const mod = new URL("../images/mod.ts", import.meta.url).href;
  await Deno.writeTextFile(
    script,
    `import { pullImage } from ${JSON.stringify(mod)};
     const quiet = { status() {}, layer() {}, bytes() {}, close() {} };
     await pullImage(${JSON.stringify(ref)}, { progress: quiet });`,
  );
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-config", "--no-lock", script],
    env: { MINI_DOCKER_ROOT: `${dir}/lib` },
    stdout: output,
    stderr: output,
  }).spawn();
}

function storeEntries(dir: string, sub: string): string[] {
  try {
    return [...Deno.readDirSync(`${dir}/lib/images/${sub}`)].map((e) => e.name).sort();
  } catch {
    return [];
  }
}

async function capture(cmd: (out: (l: string) => void) => { parseAsync: unknown }, args: string[]) {
  const lines: string[] = [];
  const c = cmd((l) => lines.push(l)) as unknown as {
    parseAsync(a: string[], o: { from: "user" }): Promise<unknown>;
  };
  await c.parseAsync(args, { from: "user" });
  return lines;
}

Deno.test("pull: multi-layer image with whiteout and opaque dir, seen through overlayfs", async () => {
  await using registry = await TestRegistry.start();
  await withStore(async () => {
    const long = `usr/share/${"very-long-directory-name/".repeat(6)}file.txt`;
    const base = makeTar([
      ...busyboxRootfs(),
      { path: "etc/motd", data: "base\n" },
      { path: "etc/remove-me", data: "gone\n" },
      { path: "var/cache/a", data: "a" },
      { path: "var/cache/b", data: "b" },
      { path: "dev/", type: "dir" },
      { path: "dev/null", type: "chardev", devmajor: 1, devminor: 3, mode: 0o666 },
    ]);
    const middle = makeTar([
      { path: "etc/.wh.remove-me", data: "" },
      { path: "var/cache/.wh..wh..opq", data: "" },
      { path: "var/cache/c", data: "c" },
      { path: "etc/motd", data: "top\n" },
    ]);
    const top = makeTar([
      { path: "srv/data", data: "shared", uid: 1000, gid: 1000, mode: 0o640 },
      { path: "srv/hard", type: "hardlink", linkpath: "srv/data" },
      { path: "srv/fifo", type: "fifo" },
      { path: "bin/suid", data: "x", mode: 0o4755 },
      { path: long, data: "long" },
    ], { longNames: "gnu" });
    const pushed = await registry.pushImage("multi", "v1", {
      layers: [{ tar: base, gzip: true }, { tar: middle }, { tar: top, gzip: true }],
      config: {
        Env: ["PATH=/bin", "GREETING=hello"],
        WorkingDir: "/srv",
        Entrypoint: ["/bin/sh", "-c"],
        Cmd: ["cat /etc/motd"],
        User: "web",
      },
    });

    const ref = `${registry.host}/multi:v1`;
    const result = await pullImage(ref, { progress: silent });
    assert.equal(result.record.id, pushed.config.digest);
    assert.deepEqual(result.record.layers, pushed.diffIds);
    const image = await resolveImage(ref, { pull: "never" });
    assert.equal(image.id, pushed.config.digest);
    assert.equal(image.ref, ref);
    assert.equal(image.layers.length, 3);
    assert.deepEqual(image.config, {
      Env: ["PATH=/bin", "GREETING=hello"],
      WorkingDir: "/srv",
      Entrypoint: ["/bin/sh", "-c"],
      Cmd: ["cat /etc/motd"],
      User: "web",
    });
    assert.deepEqual(lookupUser(image.layers, image.config.User!), {
      uid: 1000,
      gid: 1000,
      additionalGids: [10, 29],
      home: "/home/web",
    });
    assert.deepEqual(lookupUser(image.layers, "0:29"), {
      uid: 0,
      gid: 29,
      additionalGids: [],
      home: "/root",
    });
    assert.throws(() => lookupUser(image.layers, "nobody"), /Cannot find user "nobody"/);

    await withOverlay(image.layers, async (root) => {
      assert.equal(await Deno.readTextFile(`${root}/etc/motd`), "top\n");
      await assert.rejects(Deno.stat(`${root}/etc/remove-me`), Deno.errors.NotFound);
      assert.deepEqual([...Deno.readDirSync(`${root}/var/cache`)].map((e) => e.name), ["c"]);
      const data = Deno.statSync(`${root}/srv/data`);
      assert.deepEqual([data.uid, data.gid, data.mode! & 0o7777, data.nlink], [
        1000,
        1000,
        0o640,
        2,
      ]);
      assert.ok(Deno.lstatSync(`${root}/srv/fifo`).isFifo);
      assert.equal(Deno.statSync(`${root}/bin/suid`).mode! & 0o7777, 0o4755);
      assert.ok(Deno.statSync(`${root}/dev/null`).isCharDevice);
      assert.equal(await Deno.readTextFile(`${root}/${long}`), "long");
      // The busybox of the bottom layer runs in the merged view.
      const out = await sh("chroot", [root, "/bin/sh", "-c", "cat /etc/motd; ls /var/cache"]);
      assert.equal(out, "top\nc\n");
    });
  });
});

Deno.test("pull: an index with two platforms gives linux/amd64; --platform picks another", async () => {
  await using registry = await TestRegistry.start();
  await withStore(async () => {
    const images: Record<string, { config: Descriptor; manifest: Descriptor }> = {};
    for (const arch of ["arm64", "amd64"]) {
      const layer = makeTar([...busyboxRootfs(), { path: "etc/arch", data: arch }]);
      const pushed = await registry.pushImage("multiarch", `only-${arch}`, {
        layers: [{ tar: layer, gzip: true }],
        architecture: arch,
        docker: true,
      });
      images[arch] = pushed;
    }
    const platform = (arch: string) => ({
      ...images[arch]!.manifest,
      platform: arch === "arm64"
        ? { os: "linux", architecture: arch, variant: "v8" }
        : { os: "linux", architecture: arch },
    });
    const index = await registry.pushIndex("multiarch", "latest", [
      platform("arm64"),
      platform("amd64"),
    ], { docker: true });

    const amd = await pullImage(`${registry.host}/multiarch`, { progress: silent });
    assert.equal(amd.record.id, images.amd64!.config.digest);
    assert.equal(amd.digest, index.digest);
    assert.deepEqual(amd.record.repoDigests, [`${registry.host}/multiarch@${index.digest}`]);
    const arm = await pullImage(`${registry.host}/multiarch@${index.digest}`, {
      platform: "linux/arm64",
      progress: silent,
    });
    assert.equal(arm.record.id, images.arm64!.config.digest);
    await assert.rejects(
      pullImage(`${registry.host}/multiarch`, { platform: "linux/s390x", progress: silent }),
      new RegExp(
        `Cannot pull "${registry.host}/multiarch:latest": no matching manifest for linux/s390x`,
      ),
    );
    const found = await resolveImage(`${registry.host}/multiarch@${index.digest}`, {
      pull: "never",
    });
    assert.equal(found.id, images.arm64!.config.digest, "the digest names the last pulled one");
  });
});

Deno.test("pull: zstd layers (OCI tar+zstd) unpack like gzip ones", async () => {
  await using registry = await TestRegistry.start();
  await withStore(async () => {
    const top = makeTar([{ path: "etc/motd", data: "zstd\n" }, {
      path: "big",
      data: "z".repeat(200_000),
    }]);
    const pushed = await registry.pushImage("zstd", "v1", {
      layers: [{ tar: makeTar(busyboxRootfs()), zstd: true }, { tar: top, zstd: true }],
    });
    assert.deepEqual(pushed.layers.map((l) => l.mediaType), [
      "application/vnd.oci.image.layer.v1.tar+zstd",
      "application/vnd.oci.image.layer.v1.tar+zstd",
    ]);
    const ref = `${registry.host}/zstd:v1`;
    const result = await pullImage(ref, { progress: silent });
    assert.deepEqual(result.record.layers, pushed.diffIds);
    const image = await resolveImage(ref, { pull: "never" });
    await withOverlay(image.layers, async (root) => {
      assert.equal(await Deno.readTextFile(`${root}/etc/motd`), "zstd\n");
      assert.equal((await Deno.stat(`${root}/big`)).size, 200_000);
      const out = await sh("chroot", [root, "/bin/cat", "/etc/motd"]);
      assert.equal(out, "zstd\n");
    });
  });
});

Deno.test("pull: a config for another platform than asked is a warning, not an error", async () => {
  await using registry = await TestRegistry.start();
  await withStore(async () => {
    const layer = { tar: makeTar(busyboxRootfs()), gzip: true };
    await registry.pushImage("arm", "only", { layers: [layer], architecture: "arm64" });
    const warnings: string[] = [];
    const warn = (line: string) => warnings.push(line);
    // A single-platform image: asked for that platform, no warning; for the host's, one.
    await pullImage(`${registry.host}/arm:only`, {
      platform: "linux/arm64",
      progress: silent,
      warn,
    });
    assert.deepEqual(warnings, []);
    await pullImage(`${registry.host}/arm:only`, { progress: silent, warn });
    assert.deepEqual(warnings, [
      "mini-docker: Warning: image platform (linux/arm64) does not match the host's platform (linux/amd64)",
    ]);
    // An index whose arm64 entry is in fact an amd64 image: --platform picks it, with a warning.
    const amd = await registry.pushImage("lying", "amd", { layers: [layer] });
    await registry.pushIndex("lying", "latest", [{
      ...amd.manifest,
      platform: { os: "linux", architecture: "arm64", variant: "v8" },
    }]);
    warnings.length = 0;
    const pulled = await pullImage(`${registry.host}/lying`, {
      platform: "linux/arm64",
      progress: silent,
      warn,
    });
    assert.equal(pulled.record.id, amd.config.digest);
    assert.deepEqual(warnings, [
      "mini-docker: Warning: image platform (linux/amd64) does not match the expected platform (linux/arm64)",
    ]);
  });
});

Deno.test("pull: a tampered blob is rejected by digest, nothing is stored", async () => {
  await using registry = await TestRegistry.start();
  await withStore(async (dir) => {
    const layer = makeTar([{ path: "file", data: "x".repeat(10_000) }]);
    const pushed = await registry.pushImage("tampered", "latest", { layers: [{ tar: layer }] });
    const blob = registry.blobDataPath(pushed.layers[0]!.digest);
    const bytes = await Deno.readFile(blob);
    bytes[1000] = "y".charCodeAt(0); // same size, valid tar, different content
    await Deno.writeFile(blob, bytes);

    const err = await pullImage(`${registry.host}/tampered`, { progress: silent }).catch((e) => e);
    assert.ok(err instanceof UserError, String(err));
    assert.equal(err.exitCode, 125);
    assert.match(
      err.message,
      new RegExp(
        `^Cannot pull ".*tampered:latest": blob ${pushed.layers[0]!.digest}: digest mismatch`,
      ),
    );
    assert.deepEqual(storeEntries(dir, "layers"), []);
    assert.deepEqual(storeEntries(dir, "tmp"), []);
    assert.deepEqual(new ImageStore().readIndex().images, {});
  });
});

Deno.test("pull: unknown tag and unreachable registry: one clear line, exit 125", async () => {
  await using registry = await TestRegistry.start();
  await withStore(async () => {
    await registry.pushImage("x", "latest", { layers: [{ tar: makeTar([{ path: "f" }]) }] });
    const unknown = await capture(pullCommand, ["-q", `${registry.host}/x:nope`]).catch((e) => e);
    assert.ok(unknown instanceof UserError);
    assert.equal(unknown.exitCode, 1); // Docker's pull; run keeps 125
    assert.equal(unknown.message, `Cannot pull "${registry.host}/x:nope": manifest unknown`);

    const port = freePort();
    const down = await capture(pullCommand, ["-q", `127.0.0.1:${port}/x`]).catch((e) => e);
    assert.ok(down instanceof UserError);
    assert.equal(down.exitCode, 1);
    assert.equal(down.message, `Cannot reach registry "127.0.0.1:${port}": connection refused`);

    const ok = await capture(pullCommand, ["-q", `${registry.host}/x`]);
    assert.deepEqual(ok, [`${registry.host}/x:latest`]);
    assert.equal((await capture(imagesCommand, ["-q", `${registry.host}/x`])).length, 1);
    assert.equal((await capture(imagesCommand, ["-q", `${registry.host}/x:other`])).length, 0);
  });
});

Deno.test("pull: concurrent pulls of one image all succeed and store each layer once", async () => {
  await using registry = await TestRegistry.start();
  await withStore(async (dir) => {
    const big = crypto.getRandomValues(new Uint8Array(65536));
    const layers = [0, 1, 2].map((i) => ({
      tar: makeTar([{ path: `layer${i}/data`, data: concat(Array(40).fill(big)) }]),
      gzip: i !== 1,
    }));
    const pushed = await registry.pushImage("busy", "latest", { layers });
    // Through a slow proxy, so that the four pulls overlap for sure.
    await using proxy = new SlowProxy(registry.host, 1);
    const ref = `${proxy.host}/busy:latest`;
    // Two other processes (the flock must work across processes) and two pulls in this one.
    const [a, b, c, d] = await Promise.allSettled([
      spawnPull(dir, ref, "piped").then((c) => c.output()),
      spawnPull(dir, ref, "piped").then((c) => c.output()),
      pullImage(ref, { progress: silent }),
      pullImage(ref, { progress: silent }),
    ]);
    const why = (r?: PromiseSettledResult<unknown>) => r?.status === "rejected" ? r.reason : "";
    for (const r of [a, b]) {
      assert.ok(r?.status === "fulfilled", String(why(r)));
      assert.ok(r.value.success, new TextDecoder().decode(r.value.stderr));
    }
    for (const r of [c, d]) assert.equal(r?.status, "fulfilled", String(why(r)));
    assert.deepEqual(storeEntries(dir, "layers"), pushed.diffIds.map((d) => d.slice(7)).sort());
    assert.deepEqual(storeEntries(dir, "tmp"), []);
    const index = new ImageStore().readIndex();
    assert.deepEqual(Object.keys(index.images), [pushed.config.digest]);
    assert.deepEqual(index.tags, { [ref]: pushed.config.digest });
    for (const layer of pushed.layers) {
      assert.equal(proxy.blobRequests.get(layer.digest), 1, "each layer is downloaded once");
    }
  });
});

Deno.test("pull: a malicious layer is rejected and nothing is written outside the store", async () => {
  await using registry = await TestRegistry.start();
  await withStore(async (dir) => {
    const outside = `${dir}/outside`;
    await Deno.mkdir(outside);
    const attacks = {
      dotdot: makeTar([{ path: "ok", data: "fine" }, {
        path: "../../../outside/pwned",
        data: "x",
      }]),
      symlink: makeTar([
        { path: "escape", type: "symlink", linkpath: outside },
        { path: "escape/pwned", data: "x" },
      ]),
      hardlink: makeTar([{ path: "h", type: "hardlink", linkpath: "../../../../etc/passwd" }]),
    };
    for (const [name, tar] of Object.entries(attacks)) {
      await registry.pushImage(name, "latest", { layers: [{ tar, gzip: true }] });
      const err = await pullImage(`${registry.host}/${name}`, { progress: silent }).catch((e) => e);
      assert.ok(err instanceof UserError, `${name}: ${err}`);
      assert.match(err.message, /escapes the layer root|goes through the symbolic link/, name);
      assert.deepEqual([...Deno.readDirSync(outside)], [], name);
      assert.deepEqual(storeEntries(dir, "layers"), [], name);
      assert.deepEqual(storeEntries(dir, "tmp"), [], name);
    }
    assert.deepEqual(new ImageStore().readIndex().images, {});
  });
});

Deno.test("pull: an interrupted pull leaves nothing a later pull would use", async () => {
  await using registry = await TestRegistry.start();
  await withStore(async (dir) => {
    const data = randomBytes(1 << 20);
    const pushed = await registry.pushImage("slow", "latest", {
      layers: [{ tar: makeTar([{ path: "big", data }]), gzip: true }],
    });
    // A proxy that trickles blobs, so that the pull can be killed half-way.
    await using proxy = new SlowProxy(registry.host);
    const child = await spawnPull(dir, `${proxy.host}/slow`, "null");
    try {
      const deadline = Date.now() + 30_000;
      while (proxy.served < 100_000) {
        assert.ok(Date.now() < deadline, "the child pull did not start downloading");
        await new Promise((r) => setTimeout(r, 20));
      }
    } finally {
      child.kill("SIGKILL");
      await child.status;
    }
    assert.deepEqual(storeEntries(dir, "layers"), []);
    assert.equal(storeEntries(dir, "tmp").length, 1, "the killed pull's work in progress");
    assert.deepEqual(new ImageStore().readIndex().images, {});
    await assert.rejects(resolveImage(`${proxy.host}/slow`, { pull: "never" }), /No such image/);

    const again = await pullImage(`${registry.host}/slow`, { progress: silent });
    assert.equal(again.record.id, pushed.config.digest);
    assert.deepEqual(storeEntries(dir, "tmp"), [], "the stale work was removed");
  });
});

Deno.test("rmi: refused while a live container uses the image, unless forced", async () => {
  await using registry = await TestRegistry.start();
  await withStore(async (dir) => {
    const shared = makeTar(busyboxRootfs());
    const a = await registry.pushImage("app", "latest", {
      layers: [{ tar: shared, gzip: true }, { tar: makeTar([{ path: "a", data: "a" }]) }],
    });
    const b = await registry.pushImage("other", "latest", {
      layers: [{ tar: shared, gzip: true }, { tar: makeTar([{ path: "b", data: "b" }]) }],
    });
    const appRef = `${registry.host}/app`;
    await pullImage(appRef, { progress: silent });
    await pullImage(`${registry.host}/other`, { progress: silent });
    assert.equal(storeEntries(dir, "layers").length, 3, "the shared layer is stored once");

    // A container of the image, as `run` records it (its process: a sleep of ours).
    const sleep = new Deno.Command("sleep", { args: ["600"] }).spawn();
    const stateDir = `${dir}/lib/containers/0123456789abcdef`;
    try {
      await Deno.mkdir(stateDir, { recursive: true });
      await Deno.writeTextFile(
        `${stateDir}/state.json`,
        JSON.stringify({
          id: "0123456789abcdef",
          name: "user",
          status: "running",
          created: new Date().toISOString(),
          process: { pid: sleep.pid, startTime: processStartTime(sleep.pid) },
          image: a.config.digest,
          command: ["sleep", "600"],
          cgroupsPath: "mini-docker/0123456789abcdef",
          autoRemove: false,
          detached: true,
        }),
      );
      const refused = await capture(rmiCommand, [appRef]).catch((e) => e);
      assert.ok(refused instanceof UserError);
      assert.equal(refused.exitCode, 1); // Docker: a conflict from the daemon
      assert.equal(
        refused.message,
        `Cannot remove image "${appRef}": image is being used by container 0123456789ab`,
      );
      assert.ok(new ImageStore().readIndex().images[a.config.digest]);

      // Forced: the names go, the data stays while the container runs (as Docker does).
      const forced = await capture(rmiCommand, ["-f", appRef]);
      assert.deepEqual(forced.slice(0, 1), [`Untagged: ${registry.host}/app:latest`]);
      assert.ok(new ImageStore().readIndex().images[a.config.digest]);
      const listed = await capture(imagesCommand, []);
      assert.match(
        listed.join("\n"),
        new RegExp(`<none> +<none> +${a.config.digest.slice(7, 19)}`),
      );
    } finally {
      sleep.kill();
      await sleep.status;
    }
    // The container is removed: the image can be deleted by id; the shared layer stays.
    await Deno.remove(stateDir, { recursive: true });
    const deleted = await capture(rmiCommand, [a.config.digest.slice(7, 19)]);
    assert.deepEqual(deleted, [`Deleted: ${a.config.digest}`]);
    assert.deepEqual(storeEntries(dir, "layers"), b.diffIds.map((d) => d.slice(7)).sort());
    const gone = await capture(rmiCommand, ["nothing:here"]).catch((e) => e);
    assert.equal(gone.message, `No such image: nothing:here`);
    assert.equal(gone.exitCode, 1, "Docker's code for an image it does not have");
  });
});

Deno.test("import: a gzip root filesystem tarball, then images lists it", async () => {
  await withStore(async (dir) => {
    const tarball = `${dir}/rootfs.tar.gz`;
    await Deno.writeFile(tarball, await gzip(makeTar(busyboxRootfs())));
    const [id] = await capture(importCommand, [tarball, "busybox:imported"]);
    assert.match(id!, /^sha256:[a-f0-9]{64}$/);
    const plain = `${dir}/rootfs.tar`;
    await Deno.writeFile(plain, makeTar([{ path: "only", data: "plain" }]));
    await capture(importCommand, [plain, "plain"]);

    const table = await capture(imagesCommand, []);
    assert.deepEqual(table[0]!.split(/ {2,}/), [
      "REPOSITORY",
      "TAG",
      "IMAGE ID",
      "CREATED",
      "SIZE",
    ]);
    const rows = table.slice(1).map((l) => l.split(/ {2,}/));
    const row = rows.find((r) => r[0] === "busybox");
    assert.deepEqual(row?.slice(0, 3), ["busybox", "imported", id!.slice(7, 19)]);
    assert.equal(row?.[3], "Less than a second ago");
    assert.match(row?.[4] ?? "", /^[\d.]+MB$/);
    assert.ok(rows.some((r) => r[0] === "plain" && r[1] === "latest"));
    assert.deepEqual(await capture(imagesCommand, ["-q", "busybox"]), [id!.slice(7, 19)]);

    const image = await resolveImage("busybox:imported", { pull: "never" });
    assert.equal(image.id, id);
    assert.deepEqual(image.config, {});
    assert.equal(image.layers.length, 1);
    assert.equal(
      sha256(await Deno.readFile(`${image.layers[0]}/bin/busybox`)),
      sha256(await Deno.readFile("/bin/busybox")),
    );
    const missing = await capture(importCommand, [`${dir}/nope.tar`, "x"]).catch((e) => e);
    assert.equal(missing.message, `Cannot import "${dir}/nope.tar": no such file`);
  });
});

Deno.test("images: table like docker images", async () => {
  const { formatTable, humanAgo } = await import("../cmd/images.ts");
  const now = Date.parse("2024-05-01T00:00:00Z");
  const ago = (s: number) => humanAgo(now - s * 1000, now);
  assert.equal(ago(0.5), "Less than a second ago");
  assert.equal(ago(1), "1 second ago");
  assert.equal(ago(59), "59 seconds ago");
  assert.equal(ago(60), "About a minute ago");
  assert.equal(ago(600), "10 minutes ago");
  assert.equal(ago(3600), "About an hour ago");
  assert.equal(ago(5 * 3600), "5 hours ago");
  assert.equal(ago(3 * 86400), "3 days ago");
  assert.equal(ago(20 * 86400), "2 weeks ago");
  assert.equal(ago(90 * 86400), "3 months ago");
  assert.equal(ago(800 * 86400), "2 years ago");
  const id = `sha256:${"ab".repeat(32)}`;
  assert.deepEqual(
    formatTable([
      { repository: "alpine", tag: "latest", id, created: "2024-04-30T00:00:00Z", size: 7_796_000 },
      { repository: "<none>", tag: "<none>", id, size: 512 },
    ], new Date(now)),
    [
      "REPOSITORY   TAG       IMAGE ID       CREATED        SIZE",
      "alpine       latest    abababababab   24 hours ago   7.8MB",
      "<none>       <none>    abababababab   N/A            512B",
    ],
  );
});

/**
 * Not a check, a measurement for the benchmark notes (MINI_DOCKER_BENCH=1): pull + unpack of a
 * ~100 MB image of incompressible files from a loopback registry, against `skopeo copy` of the
 * same image to an OCI layout (download and verify only, no unpacking).
 */
Deno.test({
  name: "bench: pull ~100 MB vs skopeo copy",
  ignore: Deno.env.get("MINI_DOCKER_BENCH") !== "1",
  async fn() {
    await using registry = await TestRegistry.start();
    await withStore(async (dir) => {
      const layers = [];
      for (let l = 0; l < 4; l++) {
        const files = Array.from({ length: 10 }, (_, f) => ({
          path: `data/${l}/file${f}`,
          data: randomBytes(2_500_000),
        }));
        layers.push({ tar: makeTar(files), gzip: true });
      }
      await registry.pushImage("bench", "latest", { layers });
      const ref = `${registry.host}/bench:latest`;
      const t0 = performance.now();
      const pulled = await pullImage(ref, { progress: silent });
      const ours = (performance.now() - t0) / 1000;
      const t1 = performance.now();
      await sh("skopeo", [
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        `docker://${ref}`,
        `oci:${dir}/skopeo:latest`,
      ]);
      const skopeo = (performance.now() - t1) / 1000;
      const mb = pulled.record.size / 1e6;
      console.log(
        `pull+unpack ${mb.toFixed(0)} MB: mini-docker ${ours.toFixed(2)} s (${
          (mb / ours).toFixed(0)
        } MB/s); skopeo copy (download only) ${skopeo.toFixed(2)} s (${
          (mb / skopeo).toFixed(0)
        } MB/s)`,
      );
    });
  },
});
