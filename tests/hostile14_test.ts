/**
 * Issue 14 reviewed as an attacker would: what the published container escapes (CVE-2018-15664,
 * CVE-2021-30465, CVE-2019-19921 classes), real clients and bad input find in volumes, mounts,
 * commit, save/load, push and login. Each test here failed before the fix it names.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { type Result, TestEnv } from "./helpers.ts";
import { busyboxRootfs } from "./helpers/image_registry.ts";
import { gzip, makeTar, type TarSpec } from "./helpers/image_tar.ts";

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

function names(dir: string): string[] {
  try {
    return [...Deno.readDirSync(dir)].map((e) => e.name).sort();
  } catch {
    return [];
  }
}

const NONE = ["--network", "none"];

/** A busybox image with `extra` entries, imported into `t` as `name`. */
async function importImage(t: TestEnv, name: string, extra: TarSpec[]): Promise<void> {
  const tarball = `${t.dir}/${name.replace(/\W/g, "_")}.tar.gz`;
  await Deno.writeFile(tarball, await gzip(makeTar([...busyboxRootfs(), ...extra])));
  ok(await t.run(["import", tarball, name]));
  Deno.removeSync(tarball);
}

Deno.test(
  "mount targets that resolve onto /proc or / through the image's symlinks are refused (CVE-2019-19921)",
  opts,
  async () => {
    await using t = await TestEnv.create();
    const host = `${t.dir}/host`;
    Deno.mkdirSync(host);
    Deno.writeTextFileSync(`${host}/cpuinfo`, "FAKE\n");
    await importImage(t, "evil:1", [
      { path: "p", type: "symlink", linkpath: "/proc" },
      { path: "q", type: "symlink", linkpath: "../dev/../proc/self/../cpuinfo" },
      { path: "r", type: "symlink", linkpath: "/" },
      { path: "d", type: "symlink", linkpath: "dev" },
    ]);
    const cases: [string[], string, string][] = [
      [["-v", `${host}:/p`], "bind", '"/p" resolves to "/proc"'],
      [["--tmpfs", "/p"], "tmpfs", '"/p" resolves to "/proc"'],
      [["-v", "/anon", "--mount", "type=volume,src=pv,dst=/p"], "bind", '"/p" resolves to "/proc"'],
      [["-v", `${host}/cpuinfo:/q`], "bind", '"/q" resolves to "/proc/cpuinfo"'],
      [["-v", `${host}:/r`], "bind", '"/r" resolves to "/"'],
      [["--mount", `type=bind,src=${host},dst=/r`], "bind", '"/r" resolves to "/"'],
    ];
    for (const [flags, type, why] of cases) {
      const r = await t.run([
        "run",
        "--rm",
        ...NONE,
        ...flags,
        "evil:1",
        "/bin/cat",
        "/proc/cpuinfo",
      ]);
      assert.doesNotMatch(r.stdout, /FAKE/);
      fails(
        r,
        125,
        new RegExp(
          `^mini-docker: Cannot mount ${type} on "/[pqr]": ${
            why.replaceAll("/", "\\/")
          } in the container`,
        ),
      );
    }
    // Through a symlink to anywhere else, as Docker: mounted where it leads.
    assert.equal(
      ok(
        await t.run([
          "run",
          "--rm",
          ...NONE,
          "-v",
          `${host}:/d/h`,
          "evil:1",
          "/bin/cat",
          "/dev/h/cpuinfo",
        ]),
      ),
      "FAKE\n",
    );
    assert.deepEqual(names(`${t.dir}/lib/containers`), []);
    // The failed run's anonymous volume went with it; the named one stays, as Docker keeps it.
    assert.deepEqual(names(`${t.dir}/lib/volumes`), ["pv"]);
    ok(await t.run(["volume", "rm", "pv"]));
  },
);

Deno.test(
  "a host directory or a volume mounted on /dev gets no device node or link made in it; a file on /dev/urandom stays",
  opts,
  async () => {
    await using t = await TestEnv.create();
    const host = `${t.dir}/hostdev`;
    Deno.mkdirSync(host);
    Deno.writeTextFileSync(`${host}/null`, "not a device\n");
    // runc leaves a bind-mounted /dev as it is (`-v /dev:/dev` would otherwise have the host's
    // nodes removed and made again, and any directory given gets nodes and links planted).
    const seen = ok(
      await t.run(["run", "--rm", ...NONE, "-v", `${host}:/dev`, "/bin/sh", "-c", "ls /dev"]),
    );
    assert.equal(seen, "null\n");
    assert.deepEqual(names(host), ["null"]);
    assert.equal(Deno.readTextFileSync(`${host}/null`), "not a device\n");
    assert.ok(Deno.lstatSync(`${host}/null`).isFile);
    // A file mounted on one of the standard nodes is the one seen (runc leaves it).
    Deno.writeTextFileSync(`${t.dir}/rnd`, "NOT RANDOM\n");
    assert.equal(
      ok(
        await t.run([
          "run",
          "--rm",
          ...NONE,
          "-v",
          `${t.dir}/rnd:/dev/urandom:ro`,
          "/bin/cat",
          "/dev/urandom",
        ]),
      ),
      "NOT RANDOM\n",
    );
    ok(await t.run(["volume", "create", "devvol"]));
    ok(await t.run(["run", "--rm", ...NONE, "-v", "devvol:/dev:nocopy", "/bin/true"]));
    assert.deepEqual(names(`${t.dir}/lib/volumes/devvol/_data`), []);
    ok(await t.run(["volume", "rm", "devvol"]));
  },
);

Deno.test(
  "commit: links stay links, nodes and setuid kept, a name that is not UTF-8 refused in one line",
  opts,
  async () => {
    await using t = await TestEnv.create();
    Deno.writeTextFileSync(`${t.dir}/secret`, "HOSTSECRET\n");
    const plant = (name: string, script: string) =>
      t.run(["run", "-d", "--name", name, ...NONE, "/bin/sh", "-c", script]);
    const id = ok(
      await plant(
        "c1",
        `ln -s ${t.dir}/secret /sym; mkdir /d; echo x >/d/f; ln /d/f /d/hl; mknod /d/fifo p; ` +
          `mknod /d/null c 1 3; echo s >/d/suid; chmod 4755 /d/suid; touch "/d/new
line"`,
      ),
    );
    ok(await t.run(["wait", "c1"]));
    // A socket in the writable layer (planted from the host side here): left out, as Docker.
    // (from its directory: sun_path holds 108 bytes)
    const cwd = Deno.cwd();
    const upper = `${t.dir}/lib/containers/${id.trim()}/upper`;
    Deno.chdir(`${upper}/d`);
    let socket: Deno.Listener;
    try {
      socket = Deno.listen({ transport: "unix", path: "sock" }); // removed when closed
    } finally {
      Deno.chdir(cwd);
    }
    try {
      assert.ok(Deno.lstatSync(`${upper}/d/sock`).isSocket);
      ok(await t.run(["commit", "c1", "evil:1"]));
    } finally {
      socket.close();
    }
    const listing = ok(
      await t.run([
        "run",
        "--rm",
        ...NONE,
        "evil:1",
        "/bin/sh",
        "-c",
        "readlink /sym; stat -c '%A %h %n' /d/*",
      ]),
    );
    assert.equal(
      listing,
      `${t.dir}/secret\n-rw-r--r-- 2 /d/f\nprw-r--r-- 1 /d/fifo\n-rw-r--r-- 2 /d/hl\n` +
        `-rw-r--r-- 1 /d/new\nline\ncrw-r--r-- 1 /d/null\n-rwsr-xr-x 1 /d/suid\n`,
    );
    // The host file never went into a layer.
    ok(await t.run(["save", "-o", `${t.dir}/evil.tar`, "evil:1"]));
    const tar = new Deno.Command("tar", { args: ["-xOf", `${t.dir}/evil.tar`], stdout: "piped" })
      .outputSync();
    const archive = new TextDecoder().decode(tar.stdout);
    assert.ok(!archive.includes("HOSTSECRET"));
    ok(await t.run(["rmi", "evil:1"]));
    ok(await t.run(["rm", "c1"]));

    // Deno reads a non-UTF-8 name lossily: refused clearly, and nothing is stored.
    ok(await plant("c2", `touch "$(printf '/bad\\377name')"`));
    ok(await t.run(["wait", "c2"]));
    const before = names(`${t.dir}/lib/images/blobs/sha256`);
    fails(await t.run(["commit", "c2", "bad:1"]), 1, /"\/bad\uFFFDname" is not valid UTF-8/);
    assert.deepEqual(names(`${t.dir}/lib/images/blobs/sha256`), before);
    assert.equal(ok(await t.run(["images", "-q"])), "");
    ok(await t.run(["rm", "c2"]));
  },
);

Deno.test(
  "bad input: dangling -v sources, file on directory, volume names too long, save -o onto a directory, device or fifo",
  opts,
  async () => {
    await using t = await TestEnv.create();
    // A name the pattern allows but no file system takes: one line, nothing made.
    fails(
      await t.run(["volume", "create", "a".repeat(256)]),
      125,
      /it has 256 characters, at most 255/,
    );
    fails(
      await t.run(["run", "--rm", ...NONE, "-v", `${"b".repeat(300)}:/x`, "/bin/true"]),
      125,
      /it has 300 characters, at most 255/,
    );
    assert.deepEqual(names(`${t.dir}/lib/volumes`), []);
    assert.deepEqual(names(`${t.dir}/lib/containers`), []);
    // A -v source behind a dangling symlink is not created through it; a file cannot be
    // mounted on a directory, nor the reverse: one line each, naming the fix.
    Deno.symlinkSync(`${t.dir}/nowhere/deep`, `${t.dir}/dangling`);
    fails(
      await t.run(["run", "--rm", ...NONE, "-v", `${t.dir}/dangling:/x`, "/bin/true"]),
      125,
      /^mini-docker: Invalid mount ".*dangling:\/x": cannot create the bind source .*dangling: File exists$/,
    );
    assert.ok(!names(t.dir).includes("nowhere"));
    Deno.removeSync(`${t.dir}/dangling`);
    Deno.writeTextFileSync(`${t.dir}/file`, "f");
    fails(
      await t.run(["run", "--rm", ...NONE, "-v", `${t.dir}/file:/etc`, "/bin/true"]),
      125,
      /"\/etc" is a directory in the container and .*\/file a file: mount a directory on a directory, a file on a file$/,
    );
    fails(
      await t.run(["run", "--rm", ...NONE, "-v", `${t.dir}/lib:/etc/passwd`, "/bin/true"]),
      125,
      /"\/etc\/passwd" is a file in the container and .* a directory: mount a directory/,
    );
    Deno.removeSync(`${t.dir}/file`);
    assert.deepEqual(names(`${t.dir}/lib/containers`), []);
    const long = "c".repeat(255);
    assert.equal(ok(await t.run(["volume", "create", long])), `${long}\n`);
    ok(await t.run(["volume", "rm", long]));

    // save -o: what is not a regular file is refused before anything is written; a device or
    // a fifo was replaced by the archive (the host's /dev/null with `-o /dev/null`).
    await importImage(t, "app:1", []);
    const dev = `${t.dir}/null`;
    const fifo = `${t.dir}/fifo`;
    for (const cmd of [["mknod", dev, "c", "1", "3"], ["mkfifo", fifo]]) {
      assert.ok(new Deno.Command(cmd[0]!, { args: cmd.slice(1) }).outputSync().success);
    }
    Deno.symlinkSync(dev, `${t.dir}/to-null`);
    const before = names(t.dir);
    for (const target of [dev, fifo, `${t.dir}/to-null`]) {
      fails(
        await t.run(["save", "-o", target, "app:1"]),
        1,
        /^mini-docker: Cannot write ".*": it is not a regular file/,
      );
    }
    assert.ok(Deno.lstatSync(dev).isCharDevice);
    assert.ok(Deno.lstatSync(fifo).isFifo);
    assert.ok(Deno.lstatSync(`${t.dir}/to-null`).isSymlink);
    Deno.mkdirSync(`${t.dir}/out`);
    fails(
      await t.run(["save", "-o", `${t.dir}/out`, "app:1"]),
      1,
      /"[^"]*\/out": it is a directory/,
    );
    assert.deepEqual(names(`${t.dir}/out`), []);
    assert.deepEqual(names(t.dir), [...before, "out"].sort());
    assert.deepEqual(names("/tmp").filter((n) => n.startsWith(".mini-docker-test-")), []);
    // A symlink to a regular file is replaced, never written through (as Docker's CLI).
    Deno.writeTextFileSync(`${t.dir}/victim`, "VICTIM\n");
    Deno.symlinkSync(`${t.dir}/victim`, `${t.dir}/out.tar`);
    ok(await t.run(["save", "-o", `${t.dir}/out.tar`, "app:1"]));
    assert.equal(Deno.readTextFileSync(`${t.dir}/victim`), "VICTIM\n");
    assert.ok(Deno.lstatSync(`${t.dir}/out.tar`).isFile);
    ok(await t.run(["rmi", "app:1"]));
  },
);

/**
 * A registry that wants Basic credentials and sends uploads to another host (`elsewhere`), as a
 * hostile or compromised one may: what each host was sent.
 */
function redirectingRegistry(elsewhere: () => string) {
  const seen: { host: string; method: string; path: string; authorization: string }[] = [];
  const note = (host: string, req: Request) => {
    const url = new URL(req.url);
    seen.push({
      host,
      method: req.method,
      path: url.pathname,
      authorization: req.headers.get("authorization") ?? "",
    });
  };
  const good = `Basic ${btoa("alice:s3cr3t-pw")}`;
  const registry = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    note("registry", req);
    await req.body?.cancel();
    if (req.headers.get("authorization") !== good) {
      return new Response("{}", {
        status: 401,
        headers: { "www-authenticate": 'Basic realm="r"' },
      });
    }
    const path = new URL(req.url).pathname;
    if (path === "/v2/") return new Response("{}", { status: 200 });
    if (req.method === "HEAD" || req.method === "GET") return new Response(null, { status: 404 });
    if (req.method === "POST" && path.endsWith("/blobs/uploads/")) {
      return new Response(null, {
        status: 202,
        headers: { location: `${elsewhere()}/upload/${crypto.randomUUID()}` },
      });
    }
    if (req.method === "PUT" && path.includes("/manifests/")) {
      return new Response(null, { status: 201 });
    }
    return new Response(null, { status: 400 });
  });
  const other = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    note("elsewhere", req);
    await req.body?.cancel();
    return new Response(null, { status: req.method === "PUT" ? 201 : 202 });
  });
  return { registry, other, seen };
}

Deno.test(
  "push: credentials never go to an upload location on another host, nor into any output",
  opts,
  async () => {
    await using t = await TestEnv.create();
    const { registry, other, seen } = redirectingRegistry(() =>
      `http://127.0.0.1:${other.addr.port}`
    );
    try {
      const server = `127.0.0.1:${registry.addr.port}`;
      const quiet = { DOCKER_CONFIG: `${t.dir}/docker-config` };
      const env = { ...quiet, MINI_DOCKER_TRACE: "1" };
      const secrets = ["s3cr3t-pw", btoa("alice:s3cr3t-pw"), btoa("alice:wrong")];
      const clean = (r: Result) => {
        for (const s of secrets) assert.ok(!`${r.stdout}${r.stderr}`.includes(s), r.stderr);
        return r;
      };
      fails(
        clean(await t.run(["login", "-u", "alice", "-p", "wrong", server], { env: quiet })),
        1,
        /unauthorized/,
      );
      ok(clean(
        await t.run(["login", "-u", "alice", "--password-stdin", server], {
          env,
          stdin: "s3cr3t-pw\n",
        }),
      ));
      await importImage(t, `${server}/app:1`, []);
      ok(clean(await t.run(["push", `${server}/app:1`], { env })));
      // The layers went to the other host, without the registry's credentials.
      const away = seen.filter((s) => s.host === "elsewhere");
      assert.ok(away.some((s) => s.method === "PUT"), JSON.stringify(seen));
      assert.deepEqual(away.filter((s) => s.authorization !== ""), []);
      assert.ok(seen.some((s) => s.host === "registry" && s.path.includes("/manifests/")));
      // A config.json kept elsewhere through a symlink stays a symlink (Docker's CLI).
      const kept = `${t.dir}/dotfiles/docker.json`;
      Deno.mkdirSync(`${t.dir}/dotfiles`);
      Deno.renameSync(`${quiet.DOCKER_CONFIG}/config.json`, kept);
      Deno.symlinkSync(kept, `${quiet.DOCKER_CONFIG}/config.json`);
      ok(await t.run(["logout", server], { env }));
      assert.ok(Deno.lstatSync(`${quiet.DOCKER_CONFIG}/config.json`).isSymlink);
      assert.equal(Deno.statSync(kept).mode! & 0o777, 0o600);
      assert.ok(!Deno.readTextFileSync(kept).includes(server));
      ok(await t.run(["rmi", `${server}/app:1`]));
    } finally {
      await registry.shutdown();
      await other.shutdown();
    }
  },
);

function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

Deno.test(
  "load: hostile manifests (tags, layer names, links, diff ids) leave nothing; a tar bomb loads",
  opts,
  async () => {
    await using t = await TestEnv.create();
    const enc = new TextEncoder();
    const layer = makeTar([{ path: "hello", data: "hi\n" }]);
    const config = (ids: string[]) =>
      enc.encode(JSON.stringify({
        architecture: "amd64",
        os: "linux",
        config: {},
        rootfs: { type: "layers", diff_ids: ids.map((i) => `sha256:${i}`) },
      }));
    const good = config([sha256Hex(layer)]);
    const archive = async (name: string, manifest: unknown, extra: TarSpec[] = []) => {
      const path = `${t.dir}/${name}.tar`;
      await Deno.writeFile(
        path,
        makeTar([
          ...extra,
          { path: "l.tar", data: layer },
          { path: "manifest.json", data: JSON.stringify([manifest]) },
        ]),
      );
      return path;
    };
    const stored =
      () => [names(`${t.dir}/lib/images/blobs/sha256`), names(`${t.dir}/lib/images/tmp`)];
    const before = stored();
    const digestTag = `x@sha256:${"a".repeat(64)}`;
    const cases: [string, unknown, TarSpec[], RegExp][] = [
      ["diffid", { Config: "c.json", RepoTags: ["x:1"], Layers: ["l.tar"] }, [
        { path: "c.json", data: config(["0".repeat(64)]) },
      ], /layer "l\.tar" is sha256:\w+, not the sha256:0{64} its config says/],
      ["nulltag", { Config: "c.json", RepoTags: [null], Layers: ["l.tar"] }, [
        { path: "c.json", data: good },
      ], /manifest\.json names an invalid tag null/],
      ["digesttag", { Config: "c.json", RepoTags: [digestTag], Layers: ["l.tar"] }, [
        { path: "c.json", data: good },
      ], /manifest\.json names an invalid tag "x@sha256:a+"/],
      ["climbtag", { Config: "c.json", RepoTags: ["../../x:1"], Layers: ["l.tar"] }, [
        { path: "c.json", data: good },
      ], /manifest\.json names an invalid tag "\.\.\/\.\.\/x:1"/],
      ["numlayer", { Config: "c.json", RepoTags: ["x:1"], Layers: [5] }, [
        { path: "c.json", data: good },
      ], /manifest\.json has an entry without Config or Layers/],
      ["abslink", { Config: "c.json", RepoTags: ["x:1"], Layers: ["l.tar"] }, [
        { path: "c.json", type: "symlink", linkpath: "/etc/passwd" },
      ], /the archive has no "c\.json"/],
      ["hardlink", { Config: "c.json", RepoTags: ["x:1"], Layers: ["l.tar"] }, [
        { path: "c.json", type: "hardlink", linkpath: "../../../../etc/passwd" },
      ], /not a readable archive: entry .* escapes/],
    ];
    for (const [name, manifest, extra, why] of cases) {
      const r = await t.run(["load", "-q", "-i", await archive(name, manifest, extra)]);
      fails(r, 1, new RegExp(`^mini-docker: Cannot load ".*${name}\\.tar": ${why.source}`));
      assert.deepEqual(stored(), before, name);
    }
    assert.equal(ok(await t.run(["images", "-q"])), "");
    // Many tiny entries: loaded, and run.
    const many: TarSpec[] = [];
    for (let i = 0; i < 20000; i++) many.push({ path: `d${i % 100}/f${i}`, data: "" });
    const bomb = makeTar(many);
    const path = await archive("bomb", {
      Config: "c.json",
      RepoTags: ["bomb:1"],
      Layers: ["b.tar"],
    }, [
      { path: "c.json", data: config([sha256Hex(bomb)]) },
      { path: "b.tar", data: bomb },
    ]);
    assert.equal(ok(await t.run(["load", "-q", "-i", path])), "Loaded image: bomb:1\n");
    ok(await t.run(["rmi", "bomb:1"]));
  },
);

Deno.test(
  "--mount is read as Docker's CSV: a quoted field holds commas and quotes; a stray quote is refused",
  opts,
  async () => {
    await using t = await TestEnv.create();
    const dir = `${t.dir}/a,b "c"`;
    Deno.mkdirSync(dir);
    Deno.writeTextFileSync(`${dir}/f`, "found\n");
    const quoted = `"src=${dir.replaceAll('"', '""')}"`;
    assert.equal(
      ok(
        await t.run([
          "run",
          "--rm",
          ...NONE,
          "--mount",
          `type=bind,${quoted},"dst=/x,y",readonly`,
          "/bin/cat",
          "/x,y/f",
        ]),
      ),
      "found\n",
    );
    for (
      const [value, why] of [
        [`type=bind,src="${t.dir}",dst=/x`, /a quote in "src=\\".*": quote a whole field/],
        [`type=bind,"src=${t.dir},dst=/x`, /a quoted field is not closed/],
        [`type=bind,"src=${t.dir}"x,dst=/x`, /text after the closing quote/],
      ] as const
    ) {
      fails(await t.run(["run", "--rm", ...NONE, "--mount", value, "/bin/true"]), 125, why);
    }
    assert.deepEqual(names(`${t.dir}/lib/containers`), []);
  },
);

Deno.test(
  "a file the user mounts on /etc/hosts, /etc/hostname or /etc/resolv.conf is the one seen",
  opts,
  async () => {
    await using t = await TestEnv.create();
    for (const name of ["hosts", "hostname", "resolv.conf"]) {
      Deno.writeTextFileSync(`${t.dir}/${name}`, `MINE ${name}\n`);
    }
    const seen = ok(
      await t.run([
        "run",
        "--rm",
        ...NONE,
        "-v",
        `${t.dir}/hosts:/etc/hosts:ro`,
        "--mount",
        `type=bind,src=${t.dir}/resolv.conf,dst=/etc/resolv.conf`,
        "/bin/cat",
        "/etc/hosts",
        "/etc/resolv.conf",
        "/etc/hostname",
      ]),
    );
    assert.match(seen, /^MINE hosts\nMINE resolv\.conf\n[0-9a-f]{12}\n$/);
    assert.equal(Deno.readTextFileSync(`${t.dir}/hosts`), "MINE hosts\n");
  },
);

Deno.test(
  "bind propagation: rslave receives the host's later mounts, rprivate does not, rshared is refused",
  opts,
  async () => {
    await using t = await TestEnv.create();
    const host = `${t.dir}/host`;
    Deno.mkdirSync(`${host}/later`, { recursive: true });
    const sh = (cmd: string) => {
      const out = new Deno.Command("sh", { args: ["-c", cmd], stderr: "piped" }).outputSync();
      assert.ok(out.success, `${cmd}: ${new TextDecoder().decode(out.stderr)}`);
    };
    // A shared host mount, as / is under systemd.
    sh(`mount --bind '${host}' '${host}' && mount --make-shared '${host}'`);
    try {
      for (const propagation of ["rslave", "rprivate"]) {
        ok(
          await t.run([
            "run",
            "-d",
            "--name",
            propagation,
            ...NONE,
            "-v",
            `${host}:/h:${propagation}`,
            "/bin/sleep",
            "30",
          ]),
        );
      }
      sh(`mount -t tmpfs later '${host}/later' && touch '${host}/later/marker'`);
      const sees = async (name: string) =>
        ok(await t.run(["exec", name, "/bin/ls", "/h/later"])).trim();
      assert.equal(await sees("rslave"), "marker");
      assert.equal(await sees("rprivate"), "");
      ok(await t.run(["rm", "-f", "rslave", "rprivate"]));
    } finally {
      new Deno.Command("umount", { args: ["-R", "-l", host] }).outputSync();
    }
    for (
      const flags of [["-v", `${host}:/h:rshared`], [
        "--mount",
        `type=bind,src=${host},dst=/h,bind-propagation=shared`,
      ]]
    ) {
      fails(
        await t.run(["run", "--rm", ...NONE, ...flags, "/bin/true"]),
        125,
        /"r?shared" propagation is not supported \(mounts made in the container would not reach the host\)/,
      );
    }
  },
);

Deno.test(
  "commit's walk: a directory swapped for a symlink to the host between lstat and read is refused",
  opts,
  async () => {
    const { directoryTar } = await import("../images/commit.ts");
    const dir = Deno.makeTempDirSync({ prefix: "mini-docker-hostile14-" });
    try {
      Deno.mkdirSync(`${dir}/host`);
      Deno.mkdirSync(`${dir}/host/secret-dir`);
      Deno.mkdirSync(`${dir}/upper`);
      // What a running container (commit --pause=false) achieves by timing: lstat saw a
      // directory, the readdir that follows meets its symlink to the host. The race is played
      // here by answering lstat as it was a moment before.
      Deno.symlinkSync(`${dir}/host`, `${dir}/upper/d`);
      const real = Deno.lstatSync;
      const asDir = Deno.statSync(`${dir}/host`);
      Deno.lstatSync = (p: string | URL) => String(p) === `${dir}/upper/d` ? asDir : real(p);
      let text = "";
      let error: unknown;
      try {
        const reader = directoryTar(`${dir}/upper`, { whiteouts: true, skip: new Set() })
          .pipeThrough(new TextDecoderStream()).getReader();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          text += value;
        }
      } catch (err) {
        error = err;
      } finally {
        Deno.lstatSync = real;
      }
      assert.ok(!text.includes("secret-dir"), "a host directory was listed into the layer");
      assert.match(
        String(error),
        /"\/d" changed while it was read \(commit with the container paused\)/,
      );
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
);

Deno.test(
  "login, push, pull: a token realm or a redirect that is not a web address is refused, never read here",
  opts,
  async () => {
    await using t = await TestEnv.create();
    Deno.writeTextFileSync(`${t.dir}/local-secret`, "LOCAL SECRET, not JSON\n");
    const registry = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
      await req.body?.cancel();
      return new Response("{}", {
        status: 401,
        headers: { "www-authenticate": `Bearer realm="file://${t.dir}/local-secret",service="r"` },
      });
    });
    try {
      const server = `127.0.0.1:${registry.addr.port}`;
      const env = { DOCKER_CONFIG: `${t.dir}/docker-config` };
      const r = await t.run(["login", "-u", "u", "--password-stdin", server], {
        env,
        stdin: "p\n",
      });
      fails(r, 1, /token service "file:\/\/.*local-secret" is not an http\(s\) address$/);
      await importImage(t, `${server}/app:1`, []);
      const push = await t.run(["push", `${server}/app:1`], { env });
      assert.equal(push.code, 1, push.stderr);
      assert.match(push.stderr, /token service "file:\/\/.*" is not an http\(s\) address\n$/);
      for (const out of [r, push]) assert.doesNotMatch(out.stdout + out.stderr, /LOCAL SECRET/);
      ok(await t.run(["rmi", `${server}/app:1`]));
    } finally {
      await registry.shutdown();
    }
    // A redirect to a file: URL (a manifest "served" from this host's file) is refused too.
    const redirecting = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
      if (new URL(req.url).pathname === "/v2/") return new Response("{}");
      return new Response(null, {
        status: 302,
        headers: { location: `file://${t.dir}/local-secret` },
      });
    });
    try {
      const pull = await t.run(["pull", `127.0.0.1:${redirecting.addr.port}/app:1`]);
      assert.notEqual(pull.code, 0);
      assert.match(
        pull.stderr,
        /the registry sent mini-docker to file:\/\/.*, not a web address\n$/,
      );
      assert.doesNotMatch(pull.stderr, /LOCAL SECRET/);
    } finally {
      await redirecting.shutdown();
    }
  },
);

Deno.test(
  "save -o interrupted (SIGINT, SIGTERM) leaves no half archive beside the target",
  opts,
  async () => {
    await using t = await TestEnv.create();
    // A layer big enough to be caught while it is written.
    await importImage(t, "big:1", [{ path: "zeros", data: new Uint8Array(96 << 20) }]);
    let checked = 0;
    for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
      const out = `${t.dir}/out-${signal}`;
      Deno.mkdirSync(out);
      const child = t.spawn(["save", "-o", `${out}/big.tar`, "big:1"], { stdin: "null" });
      // Stopped as soon as its temporary file appears, interrupted, then let go.
      let caught = false;
      for (let i = 0; i < 20000 && !caught; i++) {
        if (names(out).some((n) => n.endsWith(".tmp"))) {
          Deno.kill(child.pid, "SIGSTOP");
          caught = names(out).some((n) => n.endsWith(".tmp"));
          if (!caught) Deno.kill(child.pid, "SIGCONT");
          break;
        }
        await new Promise((r) => setTimeout(r, 1));
      }
      if (caught) {
        Deno.kill(child.pid, signal);
        Deno.kill(child.pid, "SIGCONT");
      }
      const status = await child.output();
      if (!caught) continue; // finished before it could be caught: nothing to check
      assert.equal(status.code, code, new TextDecoder().decode(status.stderr));
      assert.deepEqual(names(out), []);
      checked++;
    }
    assert.ok(checked > 0, "never caught while writing");
    ok(await t.run(["rmi", "big:1"]));
  },
);
