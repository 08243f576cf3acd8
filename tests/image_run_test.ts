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
  assert.equal(refused.code, 125);
  assert.match(refused.stderr, /image is being used by container/);
  assert.equal((await t.run(["rm", "-f", id])).code, 0);
  assert.equal((await t.run(["rmi", ref])).code, 0);
  const gone = await t.run(["run", "--image", "127.0.0.1:9/none:latest", "/bin/true"]);
  assert.equal(gone.code, 125);
  assert.match(gone.stderr, /Cannot reach registry "127.0.0.1:9"/);
});
