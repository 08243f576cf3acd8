/**
 * Running images: pulled from a real registry on loopback, the image's Env, WorkingDir,
 * Entrypoint, Cmd and User as defaults that flags override, over an overlayfs of its layers.
 */
import assert from "node:assert/strict";
import { TestEnv } from "./helpers.ts";
import { busyboxRootfs, TestRegistry } from "./helpers/image_registry.ts";
import { makeTar } from "./helpers/image_tar.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test("run --image: config defaults, flag overrides, layers and whiteouts", opts, async () => {
  await using registry = await TestRegistry.start();
  await using t = await TestEnv.create();
  await registry.pushImage("app", "v1", {
    layers: [
      {
        tar: makeTar([...busyboxRootfs(), { path: "srv/", type: "dir" }, {
          path: "etc/secret",
          data: "x",
        }, {
          path: "etc/passwd",
          data: "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
        }, { path: "etc/group", data: "root:x:0:\nnogroup:x:65534:\n" }]),
        gzip: true,
      },
      { tar: makeTar([{ path: "etc/.wh.secret", data: "" }, { path: "srv/motd", data: "top\n" }]) },
    ],
    config: {
      Env: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "GREETING=hello"],
      WorkingDir: "/srv",
      Entrypoint: ["/bin/sh", "-c"],
      Cmd: [
        'echo "$GREETING from $(pwd) as $(id -u)"; cat motd; test -e /etc/secret || echo no-secret',
      ],
      User: "nobody",
    },
  });
  const ref = `${registry.host}/app:v1`;
  const pulled = await t.run(["pull", ref]);
  assert.equal(pulled.code, 0, pulled.stderr);
  const r = await t.run(["run", "--image", ref]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "hello from /srv as 65534\ntop\nno-secret\n");
  // Flags override the image: -e, -w, -u, arguments (replace Cmd), --entrypoint.
  const o = await t.run([
    "run",
    "--image",
    ref,
    "-e",
    "GREETING=hi",
    "-w",
    "/tmp",
    "-u",
    "root",
    'echo "$GREETING $(pwd) $(id -u)"',
  ]);
  assert.equal(o.stdout, "hi /tmp 0\n", o.stderr);
  const e = await t.run(["run", "--image", ref, "--entrypoint", "/bin/echo", "plain"]);
  assert.equal(e.stdout, "plain\n", e.stderr);
  const unknownUser = await t.run(["run", "--image", ref, "-u", "nosuchuser"]);
  assert.equal(unknownUser.code, 125);
  assert.match(unknownUser.stderr, /Cannot find user "nosuchuser"/);
  // A detached container of the image keeps it from rmi until it is removed.
  const id = (await t.run(["run", "-d", "--image", ref, "sleep 300"])).stdout.trim();
  const ps = await t.run(["ps"]);
  assert.match(ps.stdout, new RegExp(`${id.slice(0, 12)} +${registry.host}/app:v1`));
  const refused = await t.run(["rmi", ref]);
  assert.equal(refused.code, 1); // Docker: the daemon's conflict
  assert.match(refused.stderr, /image is being used by container/);
  assert.equal((await t.run(["rm", "-f", id])).code, 0);
  assert.equal((await t.run(["rmi", ref])).code, 0);
  const gone = await t.run(["run", "--image", "127.0.0.1:9/none:latest", "/bin/true"]);
  assert.equal(gone.code, 125);
  assert.match(gone.stderr, /Cannot reach registry "127.0.0.1:9"/);
});

Deno.test(
  "run IMAGE [COMMAND]: Docker's form beside the original's; --entrypoint; Config as given",
  opts,
  async () => {
    await using registry = await TestRegistry.start();
    await using t = await TestEnv.create();
    await registry.pushImage("tool", "v1", {
      layers: [{ tar: makeTar(busyboxRootfs()), gzip: true }],
      config: {
        Entrypoint: ["/bin/echo", "entry"],
        Cmd: ["default", "args"],
        User: "web",
        Env: ["PATH=/bin"],
        Labels: { from: "image", both: "image" },
      },
    });
    const image = `${registry.host}/tool:v1`;
    const run = async (args: string[]) => {
      const r = await t.run(["run", ...args]);
      assert.equal(r.code, 0, r.stderr);
      return r.stdout;
    };
    // The image, pulled as it is missing: its Entrypoint and Cmd; arguments replace the Cmd.
    assert.equal(await run([image]), "entry default args\n");
    assert.equal(await run([image, "given"]), "entry given\n");
    // --entrypoint: the image's arguments after it; '' clears it (and the Cmd, as Docker).
    assert.equal(
      await run(["--entrypoint", "/bin/sh", image, "-c", "echo hi $HOME"]),
      "hi /home/web\n",
    );
    assert.equal(await run(["--entrypoint", "", image, "/bin/echo", "bare"]), "bare\n");
    const cleared = await t.run(["run", "--entrypoint", "", image]);
    assert.equal(cleared.code, 125);
    assert.match(
      cleared.stderr,
      /^mini-docker: No command given, and image ".*" has no Entrypoint or Cmd \(or --entrypoint cleared it\): pass one\n$/,
    );
    // The original's form: an absolute path is a command for ./rootfs/alpine; --image and
    // --rootfs make every argument the command.
    assert.equal(await run(["/bin/echo", "rootfs"]), "rootfs\n");
    assert.equal(await run(["--image", image, "/bin/echo", "x"]), "entry /bin/echo x\n");
    assert.equal(await run(["--rootfs", t.rootfs, "echo", "path"]), "path\n");
    // Config as the image and flags set it: not merged, names not numbers; labels merged.
    const id = (await run(["-d", "-l", "both=flag", image, "sleep"])).trim();
    const [c] = JSON.parse((await t.run(["inspect", id])).stdout);
    assert.deepEqual(c.Config.Entrypoint, ["/bin/echo", "entry"]);
    assert.deepEqual(c.Config.Cmd, ["sleep"]);
    assert.equal(c.Config.User, "web");
    assert.equal(c.Config.Image, image);
    assert.deepEqual(c.Config.Labels, { both: "flag", from: "image" });
    assert.equal(c.Path, "/bin/echo");
    assert.deepEqual(c.Args, ["entry", "sleep"]);
    assert.match(c.Image, /^sha256:[0-9a-f]{64}$/);
    assert.match(
      (await t.run(["ps", "-a", "--no-trunc", "--format", "{{.Image}} {{.Command}}"])).stdout,
      new RegExp(`^${image} "/bin/echo entry sleep"$`, "m"),
    );
    const other = (await run(["-d", "-u", "0", "--entrypoint", "/bin/sleep", image, "1"])).trim();
    const [o] = JSON.parse((await t.run(["inspect", other])).stdout);
    assert.deepEqual([o.Config.Entrypoint, o.Config.Cmd, o.Config.User], [
      ["/bin/sleep"],
      ["1"],
      "0",
    ]);
    // An image name that is not there: Docker's 125, one line.
    const missing = await t.run(["run", "127.0.0.1:9/nothing:here", "/bin/true"]);
    assert.equal(missing.code, 125);
    assert.equal(missing.stderr.trim().split("\n").length, 1, missing.stderr);
    assert.equal((await t.run(["rm", "-f", ...t.containerIds()])).code, 0);
  },
);
