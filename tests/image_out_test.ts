/**
 * Images that go back out: commit (a container's changes, whiteouts included, with --change),
 * tag, push to a real registry on loopback (read back by skopeo and by a pull), cross-repository
 * mounts, login to a registry with users, save/load with Podman and skopeo as peers; bad input
 * leaves the store as it was.
 */
import assert from "node:assert/strict";
import { type Result, TestEnv } from "./helpers.ts";
import { busyboxRootfs, TestRegistry, TokenServer } from "./helpers/image_registry.ts";
import { gzip, makeTar } from "./helpers/image_tar.ts";
import { podmanIn, resetPodman } from "./helpers/podman.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

function ok(r: Result): string {
  assert.equal(r.code, 0, `exit ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/** One line on stderr, with Docker's exit code. */
function oneLine(r: Result, code: number, pattern: RegExp): void {
  assert.equal(r.code, code, `expected exit ${code}: ${r.stdout}${r.stderr}`);
  assert.match(r.stderr, /^mini-docker: [^\n]+\n$/, r.stderr);
  assert.match(r.stderr, pattern);
}

/** Every file of the image store (but its lock files), and what tmp/ holds. */
function storeFiles(t: TestEnv): string[] {
  const out: string[] = [];
  const walk = (dir: string, rel: string) => {
    let entries: Deno.DirEntry[];
    try {
      entries = [...Deno.readDirSync(dir)];
    } catch {
      return;
    }
    for (const e of entries) {
      const path = rel === "" ? e.name : `${rel}/${e.name}`;
      if (path === "locks") continue;
      out.push(path);
      if (e.isDirectory && !path.startsWith("layers/")) walk(`${dir}/${e.name}`, path);
    }
  };
  walk(`${t.dir}/lib/images`, "");
  return out.filter((p) => p !== "tmp").sort();
}

async function sh(cmd: string, args: string[], stdin?: Uint8Array): Promise<Result> {
  const child = new Deno.Command(cmd, {
    args,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(stdin);
    await w.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** A busybox image imported into `t` as `name` (one gzip layer). */
async function importBusybox(t: TestEnv, name: string, extra: Parameters<typeof makeTar>[0] = []) {
  const tarball = `${t.dir}/base.tar.gz`;
  await Deno.writeFile(tarball, await gzip(makeTar([...busyboxRootfs(), ...extra])));
  ok(await t.run(["import", tarball, name]));
}

/** Polls until `fn` is true. */
async function until(what: string, fn: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + 15_000;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

Deno.test(
  "commit: added, changed and deleted files and --change, run from the new image",
  opts,
  async () => {
    await using t = await TestEnv.create();
    await importBusybox(t, "base:1", [
      { path: "etc/motd", data: "base\n" },
      { path: "etc/gone", data: "x\n" },
      { path: "opq/", type: "dir" },
      { path: "opq/old", data: "old\n" },
    ]);
    const script = [
      "echo new >/added",
      "echo changed >/etc/motd",
      "rm /etc/gone",
      "rm -rf /opq && mkdir /opq && echo c >/opq/c",
      "ln -s added /link",
      // Symlinks that would resolve on the host are kept as links, never followed.
      "ln -s /etc/shadow /escape",
      "mkdir -p /d && ln -s /root /d/up",
      "touch /ready",
      "sleep 300",
    ].join("; ");
    ok(
      await t.run([
        "run",
        "-d",
        "--name",
        "c1",
        "--network",
        "none",
        "base:1",
        "/bin/sh",
        "-c",
        script,
      ]),
    );
    await until(
      "the container's changes",
      async () => (await t.run(["exec", "c1", "test", "-e", "/ready"])).code === 0,
    );
    const before = storeFiles(t);

    // Bad input first: one line, Docker's code (1: what the daemon refuses), the store untouched.
    oneLine(await t.run(["commit", "nosuch", "x:1"]), 1, /No such container: nosuch/);
    oneLine(
      await t.run(["commit", "-c", "FROM busybox", "c1", "x:1"]),
      1,
      /Invalid --change "FROM busybox"/,
    );
    oneLine(await t.run(["commit", "-c", "EXPOSE http", "c1", "x:1"]), 1, /"http" is not a port/);
    oneLine(await t.run(["tag", "nosuch:1", "x:1"]), 1, /No such image: nosuch:1/);
    assert.deepEqual(storeFiles(t), before);

    // A running container, paused during the commit (and running again after).
    const id = ok(
      await t.run([
        "commit",
        "-c",
        'CMD ["cat", "/etc/motd"]',
        "-c",
        "ENV FOO=bar GREETING='hello world'",
        "--change",
        "WORKDIR /opq",
        "-m",
        "the changes",
        "-a",
        "Tester <t@example.org>",
        "c1",
        "app:2",
      ]),
    ).trim();
    assert.match(id, /^sha256:[0-9a-f]{64}$/);
    assert.equal(ok(await t.run(["inspect", "-f", "{{.State.Status}}", "c1"])), "running\n");
    assert.equal(ok(await t.run(["run", "--network", "none", "app:2"])), "changed\n");
    assert.equal(
      ok(
        await t.run([
          "run",
          "--network",
          "none",
          "app:2",
          "/bin/sh",
          "-c",
          'echo "$FOO $GREETING $(pwd)"; cat /added; test -e /etc/gone || echo gone; ls /opq; readlink /link',
        ]),
      ),
      "bar hello world /opq\nnew\ngone\nc\nadded\n",
    );
    // The layer says so in the image spec's terms: .wh. files, an opaque marker, no mount points.
    ok(await t.run(["save", "-o", `${t.dir}/app.tar`, "app:2"]));
    const manifest = JSON.parse(
      (await sh("tar", ["-xOf", `${t.dir}/app.tar`, "manifest.json"])).stdout,
    );
    const top = manifest[0].Layers.at(-1);
    const listing =
      (await sh("sh", ["-c", `tar -xOf '${t.dir}/app.tar' '${top}' | tar -t`])).stdout;
    const verbose =
      (await sh("sh", ["-c", `tar -xOf '${t.dir}/app.tar' '${top}' | tar -tv`])).stdout;
    assert.match(verbose, /^l.* escape -> \/etc\/shadow$/m);
    assert.match(verbose, /^l.* d\/up -> \/root$/m);
    for (
      const entry of ["etc/.wh.gone", "opq/.wh..wh..opq", "opq/c", "added", "link", "etc/motd"]
    ) {
      assert.ok(
        listing.split("\n").includes(entry),
        `${entry} missing from the layer:\n${listing}`,
      );
    }
    for (const entry of ["etc/hostname", "etc/hosts", "etc/resolv.conf", "proc/", "dev/"]) {
      assert.ok(!listing.split("\n").includes(entry), `${entry} should not be in the layer`);
    }
    const history = ok(await t.run(["history", "app:2"]));
    assert.match(
      history,
      /^IMAGE +CREATED +CREATED BY +SIZE +COMMENT\n[0-9a-f]{12} .*the changes\n<missing> /,
    );
    // ENTRYPOINT drops an inherited CMD, as in a Dockerfile; the shell form runs through sh.
    ok(await t.run(["commit", "-c", "ENTRYPOINT echo from-entrypoint", "c1", "app:3"]));
    assert.equal(ok(await t.run(["run", "--network", "none", "app:3"])), "from-entrypoint\n");
    ok(await t.run(["rm", "-f", "c1"]));

    // A container of a root filesystem directory: the directory is the image's first layer.
    ok(
      await t.run([
        "run",
        "-d",
        "--name",
        "r1",
        "--network",
        "none",
        "/bin/sh",
        "-c",
        "echo made >/made",
      ]),
    );
    ok(await t.run(["wait", "r1"]));
    ok(await t.run(["commit", "r1", "fromroot:1"]));
    assert.equal(
      ok(await t.run(["run", "--network", "none", "fromroot:1", "cat", "/made"])),
      "made\n",
    );
    ok(await t.run(["rm", "r1"]));
    ok(await t.run(["rmi", "app:2", "app:3", "fromroot:1", "base:1"]));
    // Nothing of them is left: no blob, no layer.
    assert.deepEqual(storeFiles(t).filter((p) => /^(blobs\/sha256|layers)\//.test(p)), []);
  },
);

Deno.test(
  "push: skopeo reads it back, a pull after rmi runs it, blobs mounted across repositories, failures leave nothing",
  opts,
  async () => {
    await using registry = await TestRegistry.start({ accessLog: true });
    await using t = await TestEnv.create();
    await importBusybox(t, "app:1", [{ path: "hello", data: "pushed\n" }]);
    const one = `${registry.host}/one/app:1`;
    const two = `${registry.host}/two/app:1`;
    oneLine(
      await t.run(["push", one]),
      1,
      /An image does not exist locally with the tag: .*one\/app:1/,
    );
    ok(await t.run(["tag", "app:1", one]));
    const pushed = await t.run(["push", one]);
    assert.match(ok(pushed), /^The push refers to repository \[.*one\/app\]\n/);
    assert.match(pushed.stdout, /: Pushed\n/);
    assert.match(pushed.stdout, /\n1: digest: (sha256:[0-9a-f]{64}) size: \d+\n$/);
    assert.equal(pushed.stderr, "");
    const digest = /digest: (\S+)/.exec(pushed.stdout)![1];
    const inspected = JSON.parse(
      ok(await sh("skopeo", ["inspect", "--tls-verify=false", `docker://${one}`])),
    );
    assert.equal(inspected.Digest, digest);
    const copy = `${t.dir}/skopeo-copy`;
    ok(await sh("skopeo", ["copy", "--src-tls-verify=false", `docker://${one}`, `dir:${copy}`]));
    await Deno.remove(copy, { recursive: true });

    // -a: every tag of the repository.
    ok(await t.run(["tag", "app:1", `${registry.host}/one/app:2`]));
    assert.equal(
      ok(await t.run(["push", "-a", "-q", `${registry.host}/one/app`])),
      `1: digest: ${digest} ${/size: \d+/.exec(pushed.stdout)![0]}\n2: digest: ${digest} ${
        /size: \d+/.exec(pushed.stdout)![0]
      }\n`,
    );
    ok(await t.run(["rmi", `${registry.host}/one/app:2`]));

    // Another repository of the same registry: its blobs are mounted, not uploaded again.
    ok(await t.run(["tag", one, two]));
    const mounted = await t.run(["push", two]);
    assert.ok(
      ok(mounted).endsWith(`\n1: digest: ${digest} ${/size: \d+/.exec(pushed.stdout)![0]}\n`),
      mounted.stdout,
    );
    assert.match(mounted.stdout, /: Mounted from one\/app\n/);
    const log = registry.log();
    assert.match(
      log,
      /"POST \/v2\/two\/app\/blobs\/uploads\/\?mount=sha256%3A[0-9a-f]{64}&from=one%2Fapp HTTP\/1\.1" 201/,
    );
    assert.doesNotMatch(log, /"PATCH \/v2\/two\/app\//);
    // Pushed again: every blob is there already.
    assert.match(ok(await t.run(["push", two])), /: Layer already exists\n/);

    // From the registry into an empty store, and run.
    ok(await t.run(["rmi", one, two, "app:1"]));
    ok(await t.run(["pull", two]));
    assert.equal(ok(await t.run(["run", "--network", "none", two, "cat", "/hello"])), "pushed\n");

    // A push that fails half-way (a blob damaged in the store): no manifest, no blob, no upload left.
    const three = `${registry.host}/three/app:1`;
    await importBusybox(t, "broken:1", [{ path: "other", data: "damaged\n" }]);
    ok(await t.run(["tag", "broken:1", three]));
    const index = JSON.parse(Deno.readTextFileSync(`${t.dir}/lib/images/index.json`));
    const record = index.images[index.tags[`docker.io/library/broken:1`]];
    const blobPath = `${t.dir}/lib/images/blobs/sha256/${record.layerBlobs[0].slice(7)}`;
    const bytes = Deno.readFileSync(blobPath);
    bytes[bytes.length - 20] = bytes[bytes.length - 20]! ^ 0xff;
    Deno.writeFileSync(blobPath, bytes);
    const failed = await t.run(["push", three]);
    oneLine(failed, 1, /Cannot push ".*three\/app:1": /);
    const manifest = await fetch(`http://${registry.host}/v2/three/app/manifests/1`);
    await manifest.body?.cancel();
    assert.equal(manifest.status, 404);
    const head = await fetch(`http://${registry.host}/v2/three/app/blobs/${record.layerBlobs[0]}`, {
      method: "HEAD",
    });
    assert.equal(head.status, 404);
    assert.match(registry.log(), /"DELETE \/v2\/three\/app\/blobs\/uploads\/[^"]*" 204/);
    oneLine(await t.run(["push", "127.0.0.1:9/x/app:1"]), 1, /An image does not exist locally/);
    ok(await t.run(["tag", "broken:1", "127.0.0.1:9/x/app:1"]));
    oneLine(await t.run(["push", "127.0.0.1:9/x/app:1"]), 1, /Cannot reach registry "127.0.0.1:9"/);
    // An image stored before layer blobs were kept (its record has none): pull it again.
    const old = JSON.parse(Deno.readTextFileSync(`${t.dir}/lib/images/index.json`));
    delete old.images[record.id].layerBlobs;
    Deno.writeTextFileSync(`${t.dir}/lib/images/index.json`, JSON.stringify(old));
    oneLine(
      await t.run(["push", three]),
      1,
      /stored before mini-docker kept layer blobs: pull it again/,
    );
    oneLine(
      await t.run(["save", "-o", `${t.dir}/old.tar`, three]),
      1,
      /stored before mini-docker kept layer blobs: pull it again/,
    );
  },
);

Deno.test(
  "login: a registry with users refuses a push until login; logout forgets",
  opts,
  async () => {
    await using registry = await TestRegistry.start({
      htpasswd: { user: "alice", password: "s3cret" },
    });
    await using t = await TestEnv.create();
    const env = { DOCKER_CONFIG: `${t.dir}/docker-config` };
    const run = (args: string[], stdin?: string) => t.run(args, { env, stdin });
    await importBusybox(t, "app:1");
    const name = `${registry.host}/private/app:1`;
    ok(await run(["tag", "app:1", name]));
    oneLine(
      await run(["push", name]),
      1,
      /unauthorized: authentication required \(log in with "mini-docker login 127/,
    );
    oneLine(
      await run(["login", "-u", "alice", "--password-stdin", registry.host], "wrong\n"),
      1,
      /Cannot log in to 127\.0\.0\.1:\d+: unauthorized: incorrect username or password/,
    );
    assert.throws(() => Deno.statSync(`${env.DOCKER_CONFIG}/config.json`));
    oneLine(await run(["login", registry.host]), 1, /non TTY device/);
    assert.equal(
      ok(await run(["login", "-u", "alice", "--password-stdin", registry.host], "s3cret\n")),
      "Login Succeeded\n",
    );
    const file = `${env.DOCKER_CONFIG}/config.json`;
    assert.equal(Deno.statSync(file).mode! & 0o777, 0o600);
    assert.deepEqual(JSON.parse(Deno.readTextFileSync(file)), {
      auths: { [registry.host]: { auth: btoa("alice:s3cret") } },
    });
    assert.match(ok(await run(["push", "-q", name])), /^1: digest: sha256:/);
    ok(await run(["rmi", name, "app:1"]));
    ok(await run(["pull", name]));
    // A registry behind a token service (as Docker Hub is): the credentials go to the service
    // (Basic), which hands back a bearer token for the scopes asked for.
    await using tokens = await TokenServer.start("bob", "pw");
    await using secured = await TestRegistry.start({ token: tokens });
    const team = `${secured.host}/team/app:1`;
    ok(await run(["tag", name, team]));
    oneLine(await run(["push", team]), 1, /unauthorized: authentication required/);
    oneLine(
      await run(["login", "-u", "bob", "--password-stdin", secured.host], "nope\n"),
      1,
      /incorrect username or password/,
    );
    ok(await run(["login", "-u", "bob", "--password-stdin", secured.host], "pw\n"));
    assert.match(ok(await run(["push", "-q", team])), /^1: digest: sha256:/);
    ok(await run(["rmi", team]));
    ok(await run(["pull", team]));
    assert.ok(
      tokens.requests.includes("bob repository:team/app:pull,push"),
      tokens.requests.join("\n"),
    );
    assert.ok(tokens.requests.includes("bob repository:team/app:pull"), tokens.requests.join("\n"));
    ok(await run(["logout", secured.host]));
    assert.match(ok(await run(["logout", registry.host])), /^Removing login credentials for 127/);
    assert.deepEqual(JSON.parse(Deno.readTextFileSync(file)), { auths: {} });
    ok(await run(["rmi", name]));
    const denied = await run(["pull", name]);
    assert.equal(denied.code, 1);
    assert.match(denied.stderr, /access denied/);
  },
);

/** Podman in a root of its own (helpers/podman.ts), called as `pod("load", ...)`. */
function podman(dir: string) {
  const run = podmanIn(dir);
  return (...args: string[]): Promise<Result> => run(args);
}

Deno.test(
  "save/load: Podman and skopeo read our archives, Podman's load and run here; bad archives leave nothing",
  opts,
  async () => {
    await using t = await TestEnv.create();
    await importBusybox(t, "app:1", [{ path: "hello", data: "saved\n" }]);
    const id = ok(await t.run(["images", "-q", "--no-trunc", "app:1"])).trim();
    const ours = `${t.dir}/ours.tar`;
    ok(await t.run(["save", "-o", ours, "app:1"]));
    const inspected = JSON.parse(ok(await sh("skopeo", ["inspect", `docker-archive:${ours}`])));
    assert.equal(inspected.Layers.length, 1);
    const configOf = async (ref: string) =>
      JSON.parse(ok(await sh("skopeo", ["inspect", "--raw", ref]))).config.digest;
    assert.equal(await configOf(`docker-archive:${ours}`), id);
    const oci = `${t.dir}/ours-oci.tar`;
    ok(await t.run(["save", "--format", "oci-archive", "-o", oci, "app:1"]));
    assert.equal(await configOf(`oci-archive:${oci}`), id);

    const pdir = await Deno.makeTempDir({ prefix: "mini-docker-podman-" });
    const pod = podman(pdir);
    try {
      assert.match(
        ok(await pod("load", "-i", ours)),
        /Loaded image: (localhost|docker\.io\/library)\/app:1\n/,
      );
      assert.equal(ok(await pod("images", "--format", "{{.ID}}", "app:1")).trim(), id.slice(7, 19));
      ok(await pod("rmi", id.slice(7)));
      assert.match(ok(await pod("load", "-i", oci)), /Loaded image/);
      ok(await pod("tag", id.slice(7), "localhost/pod:1"));
      ok(await pod("save", "-o", `${t.dir}/pod.tar`, "localhost/pod:1"));
      ok(
        await pod(
          "save",
          "--format",
          "oci-archive",
          "-o",
          `${t.dir}/pod-oci.tar`,
          "localhost/pod:1",
        ),
      );
    } finally {
      await resetPodman(pdir);
    }
    ok(await t.run(["rmi", "app:1"]));
    // Podman's docker-archive, and its OCI archive compressed with zstd.
    assert.equal(
      ok(await t.run(["load", "-q", "-i", `${t.dir}/pod.tar`])),
      "Loaded image: localhost/pod:1\n",
    );
    assert.equal(
      ok(await t.run(["run", "--network", "none", "localhost/pod:1", "cat", "/hello"])),
      "saved\n",
    );
    ok(await t.run(["rmi", "localhost/pod:1"]));
    ok(await sh("zstd", ["-q", `${t.dir}/pod-oci.tar`, "-o", `${t.dir}/pod-oci.tar.zst`]));
    assert.match(
      ok(await t.run(["load", "-i", `${t.dir}/pod-oci.tar.zst`])),
      /^Loaded image: localhost\/pod:1\n$/,
    );
    assert.equal(
      ok(await t.run(["run", "--network", "none", "localhost/pod:1", "cat", "/hello"])),
      "saved\n",
    );
    ok(await t.run(["rmi", "localhost/pod:1"]));
    // Ours again, gzip-compressed, from standard input.
    ok(await sh("sh", ["-c", `gzip -c '${ours}' >'${ours}.gz'`]));
    const child = t.spawn(["load"], { stdin: "piped" });
    const w = child.stdin.getWriter();
    await w.write(Deno.readFileSync(`${ours}.gz`));
    await w.close();
    const loaded = await child.output();
    assert.equal(new TextDecoder().decode(loaded.stdout), "Loaded image: app:1\n");
    assert.equal(
      ok(await t.run(["run", "--network", "none", "app:1", "cat", "/hello"])),
      "saved\n",
    );

    // Bad archives: one line, exit 1, the store as it was (no layer, no blob, nothing in tmp/).
    const before = storeFiles(t);
    await Deno.writeTextFile(`${t.dir}/notes.txt`, "not an archive\n".repeat(100));
    oneLine(
      await t.run(["load", "-i", `${t.dir}/notes.txt`]),
      1,
      /Cannot load ".*notes\.txt": not a readable archive/,
    );
    const whole = Deno.readFileSync(ours);
    await Deno.writeFile(
      `${t.dir}/truncated.tar`,
      whole.subarray(0, Math.floor(whole.byteLength * 0.6)),
    );
    oneLine(
      await t.run(["load", "-i", `${t.dir}/truncated.tar`]),
      1,
      /Cannot load ".*truncated\.tar": .*unexpected end of archive/,
    );
    oneLine(await t.run(["load", "-i", `${t.dir}/nosuch.tar`]), 1, /no such file/);
    // An archive whose entries climb out, or whose manifest names a path outside it.
    await Deno.writeFile(
      `${t.dir}/climb.tar`,
      makeTar([{ path: "../../climbed", data: "x" }, { path: "manifest.json", data: "[]" }]),
    );
    oneLine(await t.run(["load", "-i", `${t.dir}/climb.tar`]), 1, /escapes/);
    await Deno.writeFile(
      `${t.dir}/outside.tar`,
      makeTar([{
        path: "manifest.json",
        data: JSON.stringify([{ Config: "../../../etc/hostname", RepoTags: [], Layers: [] }]),
      }]),
    );
    oneLine(await t.run(["load", "-i", `${t.dir}/outside.tar`]), 1, /escapes/);
    assert.throws(() => Deno.statSync(`${t.dir}/lib/climbed`));
    oneLine(
      await t.run(["save", "-o", `${t.dir}/x.tar`, "nosuch:1"]),
      1,
      /No such image: nosuch:1/,
    );
    assert.throws(() => Deno.statSync(`${t.dir}/x.tar`));
    assert.deepEqual(storeFiles(t), before);
  },
);
