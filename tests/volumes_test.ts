/**
 * Volumes end to end, with real mounts: binds (rw, read-only, propagation), named volumes that
 * outlive their containers and are shared by two at once, copy-up from an image's content,
 * anonymous volumes (the image's Volumes, `rm -v`, `--rm`, prune), tmpfs, `--read-only`,
 * `--volumes-from`, the volume commands, and the escapes: mount targets behind symlinks that
 * point out of the root (CVE-2018-15664's class), a symlink swapped by another container sharing
 * the volume while containers start, an image whose volume path is a symlink to /etc
 * (CVE-2019-14271's class). Bad input: one line, Docker's code, nothing left behind.
 */
import assert from "node:assert/strict";
import { type Result, TestEnv, waitFor } from "./helpers.ts";
import { busyboxRootfs, TestRegistry } from "./helpers/image_registry.ts";
import { makeTar } from "./helpers/image_tar.ts";
import { HAVE_PODMAN, podmanIn } from "./helpers/podman.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

function ok(r: Result): string {
  assert.equal(r.code, 0, `exit ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/** A failure as the user sees it: `code`, one line on stderr matching `pattern`. */
function fails(r: Result, code: number, pattern: RegExp): void {
  assert.equal(r.code, code, `exit ${r.code} (${r.stdout}): ${r.stderr}`);
  const lines = r.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, `one line: ${r.stderr}`);
  assert.match(lines[0]!, pattern);
}

function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

function volumeNames(t: TestEnv): string[] {
  try {
    return [...Deno.readDirSync(`${t.dir}/lib/volumes`)].map((e) => e.name).sort();
  } catch {
    return [];
  }
}

Deno.test(
  "bind mounts: read-write, :ro refused with EROFS, created -v sources, propagation",
  opts,
  async () => {
    await using t = await TestEnv.create();
    const host = `${t.dir}/host`;
    Deno.mkdirSync(host);
    Deno.writeTextFileSync(`${host}/greeting`, "hello\n");
    // Read and written from inside; the host sees the write.
    const rw = ok(
      await t.run([
        "run",
        "--network",
        "none",
        "-v",
        `${host}:/h`,
        "/bin/sh",
        "-c",
        "cat /h/greeting; echo written >/h/out; grep ' /h ' /proc/self/mountinfo",
      ]),
    );
    assert.match(rw, /^hello\n/);
    assert.equal(Deno.readTextFileSync(`${host}/out`), "written\n");
    // Private by default (Docker's rprivate): no "shared:" peer group on it.
    assert.doesNotMatch(rw, /shared:/);
    // :ro and --mount readonly: the write fails with EROFS, the file is not touched.
    for (const flag of [["-v", `${host}:/h:ro`], ["--mount", `type=bind,src=${host},dst=/h,ro`]]) {
      const ro = await t.run([
        "run",
        "--network",
        "none",
        ...flag,
        "/bin/sh",
        "-c",
        "echo x >/h/out",
      ]);
      assert.equal(ro.code, 1);
      assert.match(ro.stderr, /Read-only file system/);
    }
    assert.equal(Deno.readTextFileSync(`${host}/out`), "written\n");
    // -v creates a missing host directory (Docker's); bind-propagation is applied for real
    // (what rslave receives: hostile14_test.ts).
    const made = `${t.dir}/made/by/run`;
    const shared = ok(
      await t.run([
        "run",
        "--network",
        "none",
        "-v",
        `${made}:/m:rslave`,
        "/bin/sh",
        "-c",
        "grep ' /m ' /proc/self/mountinfo",
      ]),
    );
    assert.ok(Deno.statSync(made).isDirectory);
    assert.doesNotMatch(shared, /shared:\d+/);
    // A file bound on a file.
    const file = ok(
      await t.run([
        "run",
        "--network",
        "none",
        "-v",
        `${host}/greeting:/etc/motd:ro`,
        "/bin/cat",
        "/etc/motd",
      ]),
    );
    assert.equal(file, "hello\n");
  },
);

Deno.test(
  "named volumes: shared by two running containers, seen by exec, outliving rm; the volume commands",
  opts,
  async () => {
    await using t = await TestEnv.create();
    const writer = ok(
      await t.run([
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "writer",
        "-v",
        "data:/data",
        "/bin/sh",
        "-c",
        "echo from-writer >/data/msg; i=0; while [ ! -f /data/reply ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done; sleep 60",
      ]),
    ).trim();
    const data = `${t.dir}/lib/volumes/data/_data`;
    await waitFor(() => exists(`${data}/msg`), 10_000, "the writer's file");
    // A second container reads it and answers while the first runs; the first sees the answer.
    const reader = ok(
      await t.run([
        "run",
        "--network",
        "none",
        "-v",
        "data:/shared",
        "/bin/sh",
        "-c",
        "cat /shared/msg; echo from-reader >/shared/reply",
      ]),
    );
    assert.equal(reader, "from-writer\n");
    assert.equal(ok(await t.run(["exec", "writer", "cat", "/data/reply"])), "from-reader\n");
    // In use, running: refused, Docker's message and code.
    fails(
      await t.run(["volume", "rm", "data"]),
      1,
      new RegExp(`^mini-docker: remove data: volume is in use - \\[${writer}\\]`),
    );
    // The commands: ls, -q, filters, --format, inspect's fields.
    assert.match(ok(await t.run(["volume", "ls"])), /^DRIVER +VOLUME NAME\nlocal +data\n$/);
    assert.equal(ok(await t.run(["volume", "ls", "-q", "--filter", "dangling=false"])), "data\n");
    assert.equal(ok(await t.run(["volume", "ls", "-q", "--filter", "dangling=true"])), "");
    const inspected = JSON.parse(ok(await t.run(["volume", "inspect", "data"])));
    assert.deepEqual(Object.keys(inspected[0]).sort(), [
      "CreatedAt",
      "Driver",
      "Labels",
      "Mountpoint",
      "Name",
      "Options",
      "Scope",
    ]);
    assert.equal(inspected[0].Mountpoint, data);
    assert.equal(inspected[0].Driver, "local");
    const mounts = JSON.parse(ok(await t.run(["inspect", "-f", "{{json .Mounts}}", "writer"])));
    assert.deepEqual(mounts, [{
      Type: "volume",
      Name: "data",
      Source: data,
      Destination: "/data",
      Driver: "local",
      Mode: "",
      RW: true,
      Propagation: "",
    }]);
    // The data outlives the container.
    ok(await t.run(["rm", "-f", "writer"]));
    assert.equal(ok(await t.run(["volume", "ls", "-q", "--filter", "dangling=true"])), "data\n");
    assert.match(ok(await t.run(["system", "df"])), /^Local Volumes +1 +0 +\d/m);
    assert.equal(
      ok(
        await t.run([
          "run",
          "--network",
          "none",
          "-v",
          "data:/d",
          "/bin/cat",
          "/d/msg",
          "/d/reply",
        ]),
      ),
      "from-writer\nfrom-reader\n",
    );
    // Runs that create the same volume at once: one volume, every run gets it.
    const together = await Promise.all(
      [1, 2, 3, 4].map((i) =>
        t.run([
          "run",
          "--network",
          "none",
          "-v",
          "together:/t",
          "/bin/sh",
          "-c",
          `echo ${i} >/t/${i}`,
        ])
      ),
    );
    for (const r of together) ok(r);
    assert.deepEqual(
      [...Deno.readDirSync(`${t.dir}/lib/volumes/together/_data`)].map((e) => e.name).sort(),
      ["1", "2", "3", "4"],
    );
    ok(await t.run(["volume", "rm", "together"]));
    // A stopped container holds its volume too.
    ok(await t.run(["volume", "create", "-l", "tier=db", "kept"]));
    assert.equal(ok(await t.run(["volume", "ls", "-q", "--filter", "label=tier=db"])), "kept\n");
    ok(await t.run(["create", "--name", "idle", "-v", "kept:/k", "/bin/true"]));
    fails(await t.run(["volume", "rm", "kept"]), 1, /volume is in use/);
    ok(await t.run(["rm", "idle"]));
    assert.equal(ok(await t.run(["volume", "rm", "kept", "data"])), "kept\ndata\n");
    assert.deepEqual(volumeNames(t), []);
    fails(await t.run(["volume", "inspect", "data"]), 1, /^mini-docker: No such volume: data$/);
    fails(await t.run(["volume", "rm", "data"]), 1, /^mini-docker: No such volume: data$/);
    assert.equal((await t.run(["volume", "rm", "-f", "data"])).code, 0);
  },
);

Deno.test(
  "images: copy-up into an empty volume, the image's Volumes anonymous, rm -v, --rm, prune",
  opts,
  async () => {
    await using registry = await TestRegistry.start();
    await using t = await TestEnv.create();
    await registry.pushImage("vol", "v1", {
      layers: [{
        tar: makeTar([
          ...busyboxRootfs(),
          { path: "seed/", type: "dir", mode: 0o750, uid: 1000, gid: 1000 },
          { path: "seed/file", data: "seeded\n", mode: 0o640, uid: 1000, gid: 1000 },
          { path: "seed/link", type: "symlink", linkpath: "/etc/shadow" },
          { path: "cache/", type: "dir" },
          { path: "cache/init", data: "image cache\n" },
          // The image's "conf" is /etc: a copy-up must copy the container's /etc, never the host's.
          { path: "conf", type: "symlink", linkpath: "/etc" },
        ]),
      }],
      config: { Cmd: ["/bin/sh"], Volumes: { "/cache": {} } },
    });
    const image = `${registry.host}/vol:v1`;
    ok(await t.run(["pull", image]));
    const lib = `${t.dir}/lib/volumes`;
    // Copy-up: contents, owners, modes; a symlink stays a symlink.
    const seeded = ok(
      await t.run([
        "run",
        "--network",
        "none",
        "-v",
        "seeded:/seed",
        image,
        "/bin/sh",
        "-c",
        "cat /seed/file; stat -c '%u %a' /seed /seed/file",
      ]),
    );
    assert.equal(seeded, "seeded\n1000 750\n1000 640\n");
    assert.equal(Deno.readLinkSync(`${lib}/seeded/_data/link`), "/etc/shadow");
    // Filled once: what the volume holds wins over the image afterwards.
    Deno.writeTextFileSync(`${lib}/seeded/_data/file`, "changed\n");
    assert.equal(
      ok(
        await t.run([
          "run",
          "--network",
          "none",
          "-v",
          "seeded:/seed",
          image,
          "/bin/cat",
          "/seed/file",
        ]),
      ),
      "changed\n",
    );
    // volume-nocopy: left empty.
    assert.equal(
      ok(
        await t.run([
          "run",
          "--network",
          "none",
          "--mount",
          "type=volume,src=bare,dst=/seed,volume-nocopy",
          image,
          "/bin/ls",
          "-A",
          "/seed",
        ]),
      ),
      "",
    );
    // The image's /conf -> /etc: the container's /etc is copied (its passwd has "web").
    ok(await t.run(["run", "--network", "none", "-v", "confs:/conf", image, "/bin/true"]));
    assert.match(Deno.readTextFileSync(`${lib}/confs/_data/passwd`), /^web:x:1000:/m);
    // The image's Volumes: an anonymous volume, filled from the image, kept by rm, pruned.
    ok(await t.run(["run", "-d", "--name", "a", "--network", "none", image, "/bin/sleep", "60"]));
    const mounts = JSON.parse(ok(await t.run(["inspect", "-f", "{{json .Mounts}}", "a"])));
    assert.equal(mounts.length, 1);
    assert.equal(mounts[0].Destination, "/cache");
    assert.match(mounts[0].Name, /^[0-9a-f]{64}$/);
    assert.equal(Deno.readTextFileSync(`${lib}/${mounts[0].Name}/_data/init`), "image cache\n");
    ok(await t.run(["rm", "-f", "a"]));
    assert.ok(exists(`${lib}/${mounts[0].Name}`));
    // prune: the anonymous ones only; -a: every unused one.
    const pruned = ok(await t.run(["volume", "prune", "-f"]));
    assert.match(
      pruned,
      new RegExp(`^Deleted Volumes:\\n${mounts[0].Name}\\n\\nTotal reclaimed space: `),
    );
    assert.deepEqual(volumeNames(t), ["bare", "confs", "seeded"]);
    // rm -v and --rm (and every foreground run) take their anonymous volumes with them.
    ok(
      await t.run([
        "run",
        "-d",
        "--name",
        "b",
        "--network",
        "none",
        "-v",
        "/more",
        image,
        "/bin/sleep",
        "60",
      ]),
    );
    assert.equal(volumeNames(t).length, 5);
    ok(await t.run(["rm", "-f", "-v", "b"]));
    ok(await t.run(["run", "--rm", "--network", "none", "-v", "/more", image, "/bin/true"]));
    assert.deepEqual(volumeNames(t), ["bare", "confs", "seeded"]);
    // system prune --volumes: the anonymous ones of removed containers.
    ok(await t.run(["run", "-d", "--name", "c", "--network", "none", image, "/bin/sleep", "60"]));
    ok(await t.run(["rm", "-f", "c"]));
    assert.match(
      ok(await t.run(["system", "prune", "-f", "--volumes"])),
      /Deleted Volumes:\n[0-9a-f]{64}\n/,
    );
    assert.deepEqual(volumeNames(t), ["bare", "confs", "seeded"]);
    assert.match(
      ok(await t.run(["volume", "prune", "-a", "-f"])),
      /Deleted Volumes:\n(bare|confs|seeded)\n/,
    );
    assert.deepEqual(volumeNames(t), []);
  },
);

Deno.test(
  "tmpfs with its size enforced, --read-only with writable volumes, --volumes-from",
  opts,
  async () => {
    await using t = await TestEnv.create();
    const full = await t.run([
      "run",
      "--network",
      "none",
      "--tmpfs",
      "/scratch:size=1m,mode=1770",
      "/bin/sh",
      "-c",
      "stat -c %a /scratch; grep ' /scratch ' /proc/self/mountinfo; dd if=/dev/zero of=/scratch/f bs=1k count=2048",
    ]);
    assert.equal(full.code, 1);
    assert.match(full.stdout, /^1770\n.* - tmpfs tmpfs rw,size=1024k,mode=1770/);
    assert.match(full.stderr, /No space left on device/);
    const mounted = ok(
      await t.run([
        "run",
        "--network",
        "none",
        "--mount",
        "type=tmpfs,dst=/t,tmpfs-size=65536,tmpfs-mode=700",
        "/bin/sh",
        "-c",
        "stat -c %a /t; grep -o 'size=64k' /proc/self/mountinfo",
      ]),
    );
    assert.equal(mounted, "700\nsize=64k\n");
    // --read-only: the root refuses writes, its volumes and tmpfs do not.
    const ro = await t.run([
      "run",
      "--network",
      "none",
      "--read-only",
      "-v",
      "rw:/rw",
      "--tmpfs",
      "/tmp",
      "/bin/sh",
      "-c",
      "echo a >/rw/a && echo b >/tmp/b && echo volumes-ok; echo c >/c",
    ]);
    assert.equal(ro.code, 1);
    assert.equal(ro.stdout, "volumes-ok\n");
    assert.match(ro.stderr, /can't create \/c: Read-only file system/);
    assert.match(
      ok(
        await t.run([
          "run",
          "-d",
          "--read-only",
          "--name",
          "r",
          "--network",
          "none",
          "/bin/sleep",
          "1",
        ]),
      ),
      /^[0-9a-f]{64}\n$/,
    );
    assert.equal(
      ok(await t.run(["inspect", "-f", "{{.HostConfig.ReadonlyRootfs}}", "r"])),
      "true\n",
    );
    ok(await t.run(["rm", "-f", "r"]));
    // --volumes-from: the same volumes and binds at the same places; :ro makes them read-only.
    const host = `${t.dir}/host`;
    Deno.mkdirSync(host);
    ok(
      await t.run([
        "run",
        "-d",
        "--name",
        "src",
        "--network",
        "none",
        "-v",
        "rw:/vol",
        "-v",
        `${host}:/hb`,
        "/bin/sleep",
        "60",
      ]),
    );
    const from = await t.run([
      "run",
      "--network",
      "none",
      "--volumes-from",
      "src:ro",
      "/bin/sh",
      "-c",
      "cat /vol/a; echo x >/vol/x",
    ]);
    assert.equal(from.stdout, "a\n");
    assert.match(from.stderr, /Read-only file system/);
    ok(
      await t.run([
        "run",
        "--network",
        "none",
        "--volumes-from",
        "src",
        "/bin/sh",
        "-c",
        "echo y >/vol/y && echo z >/hb/z",
      ]),
    );
    assert.ok(exists(`${t.dir}/lib/volumes/rw/_data/y`) && exists(`${host}/z`));
    ok(await t.run(["rm", "-f", "src"]));
    ok(await t.run(["volume", "rm", "rw"]));
  },
);

Deno.test(
  "escapes: targets behind symlinks out of the root land inside it; a symlink swapped during starts",
  opts,
  async () => {
    await using t = await TestEnv.create();
    const tag = crypto.randomUUID().slice(0, 8);
    const outside = `/tmp/mini-docker-escape-${tag}`;
    const host = `${t.dir}/host`;
    Deno.mkdirSync(host);
    Deno.writeTextFileSync(`${host}/file`, "bound\n");
    // The image's symlinks: absolute to a host path, relative climbing out, and to /etc.
    Deno.symlinkSync(outside, `${t.rootfs}/abs`);
    Deno.symlinkSync(`../../../../../../../../..${outside}-rel`, `${t.rootfs}/rel`);
    Deno.symlinkSync("/etc", `${t.rootfs}/etclink`);
    let swapping = false;
    try {
      const r = ok(
        await t.run([
          "run",
          "--network",
          "none",
          "-v",
          `${host}:/abs/in`,
          "-v",
          `${host}:/rel/in`,
          "-v",
          `${host}:/etclink/bound`,
          "--tmpfs",
          "/abs/tmp",
          "/bin/sh",
          "-c",
          `cat ${outside}/in/file ${outside}-rel/in/file /etc/bound/file; grep -c ' ${outside}/tmp ' /proc/self/mountinfo`,
        ]),
      );
      assert.equal(r, "bound\nbound\nbound\n1\n");
      assert.ok(!exists(outside) && !exists(`${outside}-rel`) && !exists("/etc/bound"));
      // A volume whose content another container controls: its symlink to / is the container's /.
      ok(
        await t.run([
          "run",
          "--network",
          "none",
          "-v",
          "evil:/v",
          "/bin/ln",
          "-s",
          "/etc",
          "/v/link",
        ]),
      );
      assert.equal(
        ok(
          await t.run([
            "run",
            "--network",
            "none",
            "-v",
            "evil:/v",
            "-v",
            `${host}:/v/link/planted`,
            "/bin/cat",
            "/etc/planted/file",
          ]),
        ),
        "bound\n",
      );
      assert.ok(!exists("/etc/planted"));
      // The race: a container sharing the volume swaps /v/sw between a directory and a symlink
      // out of the root while other containers start with a mount below it. Each start mounts
      // inside its own root, or fails with one line; the host path never appears.
      const race = `${outside}-race`;
      ok(
        await t.run([
          "run",
          "-d",
          "--name",
          "swapper",
          "--network",
          "none",
          "-v",
          "evil:/v",
          "/bin/sh",
          "-c",
          // Bounded (a few minutes at most), should this test die before it removes it.
          `i=0; while [ $i -lt 50000 ]; do rm -rf /v/sw; mkdir /v/sw; rm -rf /v/sw; ln -s /../../../../..${race} /v/sw; i=$((i+1)); done`,
        ]),
      );
      swapping = true;
      // Where each start's mount is, as its own mountinfo says: inside (the volume's directory,
      // or the symlink's target resolved in the root), or gone with a directory the swapper removed.
      const inside = new RegExp(`^(/v/sw/deep|${race}/deep)(//deleted)?$`);
      let started = 0;
      // At least 6 starts, and as many as it takes (at most 30) for one to get through.
      for (let i = 0; i < 30 && (i < 6 || started === 0); i++) {
        const b = await t.run([
          "run",
          "--network",
          "none",
          "-v",
          "evil:/v",
          "-v",
          `${host}:/v/sw/deep`,
          "/bin/sh",
          "-c",
          "grep deep /proc/self/mountinfo | cut -d' ' -f5; echo started",
        ]);
        if (b.code === 0) {
          const points = b.stdout.trim().split("\n").slice(0, -1);
          for (const p of points) assert.match(p, inside);
          started++;
        } else {
          fails(b, 125, /^mini-docker: Cannot mount bind on "\/v\/sw\/deep": /);
        }
        assert.ok(!exists(race), "the host path was created");
      }
      assert.ok(started > 0, "no start succeeded");
      ok(await t.run(["rm", "-f", "swapper"]));
      swapping = false;
      ok(await t.run(["volume", "rm", "evil"]));
    } finally {
      // A failed assertion must not leave the swapper running.
      if (swapping) await t.run(["rm", "-f", "swapper"]);
      for (
        const p of [outside, `${outside}-rel`, `${outside}-race`, "/etc/bound", "/etc/planted"]
      ) {
        try {
          Deno.removeSync(p, { recursive: true });
        } catch { /* never made */ }
      }
    }
  },
);

Deno.test("bad input: one line, Docker's code, nothing made", opts, async () => {
  await using t = await TestEnv.create();
  const cases: [string[], number, RegExp][] = [
    [
      ["run", "--mount", "type=bind,source=/nonexistent-mini-docker,target=/x", "/bin/true"],
      125,
      /bind source path does not exist: \/nonexistent-mini-docker/,
    ],
    [
      ["run", "-v", "/tmp:relative", "/bin/true"],
      125,
      /the container path "relative" must be absolute/,
    ],
    [["run", "--mount", "type=volume,target=rel", "/bin/true"], 125, /must be absolute/],
    [
      ["run", "--mount", "type=bind,source=/tmp,target=/x,colour=blue", "/bin/true"],
      125,
      /unknown key "colour"/,
    ],
    [["run", "-v", "data:/x:bogus", "/bin/true"], 125, /unknown option "bogus"/],
    [["run", "-v", "my/vol:/x", "/bin/true"], 125, /invalid characters for a local volume name/],
    [["run", "--tmpfs", "/t:size=lots", "/bin/true"], 125, /Invalid --tmpfs/],
    [["run", "-v", "aa:/x", "-v", "bb:/x", "/bin/true"], 125, /Duplicate mount point: \/x/],
    [["run", "--volumes-from", "nobody", "/bin/true"], 125, /No such container: nobody/],
    [["run", "-v", "/tmp:/proc/sys", "/bin/true"], 125, /nothing can be mounted on "\/proc\/sys"/],
    [["volume", "rm", "nothing"], 1, /^mini-docker: No such volume: nothing$/],
    [["volume", "create", "-o", "type=tmpfs", "x"], 125, /not supported/],
    [["volume", "create", "/abs"], 125, /Invalid volume name/],
  ];
  for (const [args, code, pattern] of cases) {
    fails(await t.run(args), code, pattern);
  }
  assert.deepEqual(volumeNames(t), []);
  assert.deepEqual(t.containerIds(), []);
  // Without overlayfs the root is the base root filesystem: no mount point is made in it.
  const readonly = { env: { MINI_DOCKER_STORAGE: "readonly" } };
  const kept = await t.run(
    ["run", "--network", "none", "-v", `${t.dir}:/newdir`, "/bin/true"],
    readonly,
  );
  assert.equal(kept.code, 125);
  assert.match(kept.stderr, /"\/newdir" does not exist in the read-only root/);
  assert.ok(!exists(`${t.rootfs}/newdir`));
  ok(
    await t.run(
      ["run", "--network", "none", "-v", `${t.dir}:/tmp/in-scratch`, "/bin/true"],
      readonly,
    ),
  );
  // A name taken: refused before any volume is made.
  ok(await t.run(["create", "--name", "taken", "/bin/true"]));
  fails(
    await t.run(["run", "-d", "--name", "taken", "-v", "fresh:/x", "-v", "/anon", "/bin/true"]),
    125,
    /Conflict: the container name "taken" is already in use/,
  );
  assert.deepEqual(volumeNames(t), []);
  ok(await t.run(["rm", "taken"]));
});

Deno.test({
  name: "volume inspect as Podman's: its fields, the same layout, the same code for an unknown one",
  ignore: !HAVE_PODMAN,
  ...opts,
  async fn() {
    await using t = await TestEnv.create();
    const dir = await Deno.makeTempDir({ prefix: "mini-docker-podman-" });
    const podman = podmanIn(dir);
    const pod = (...args: string[]) => podman(args);
    try {
      ok(await pod("volume", "create", "-l", "a=b", "same"));
      ok(await t.run(["volume", "create", "-l", "a=b", "same"]));
      const [theirs] = JSON.parse(ok(await pod("volume", "inspect", "same")));
      const [mine] = JSON.parse(ok(await t.run(["volume", "inspect", "same"])));
      // Every field of ours is one of Podman's, with the same value where it is not a place or
      // a time; the data lives at <root>/volumes/NAME/_data in both.
      for (const key of Object.keys(mine)) assert.ok(key in theirs, key);
      for (const key of ["Name", "Driver", "Labels", "Scope", "Options"]) {
        assert.deepEqual(mine[key], theirs[key], key);
      }
      assert.equal(theirs.Mountpoint, `${dir}/root/volumes/same/_data`);
      assert.equal(mine.Mountpoint, `${t.dir}/lib/volumes/same/_data`);
      assert.match(mine.CreatedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      assert.equal(
        (await t.run(["volume", "rm", "nosuch"])).code,
        (await pod("volume", "rm", "nosuch")).code,
      );
      ok(await t.run(["volume", "rm", "same"]));
    } finally {
      await pod("volume", "rm", "-f", "same");
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
