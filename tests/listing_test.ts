/**
 * What Docker's users read: `ps` and `images` with their filters, formats, -n, -l, --no-trunc
 * and -s; `inspect` with Docker's fields, templates and template errors; exit codes of unknown
 * containers; and the shapes compared with Podman's (ps columns, inspect fields), where Podman
 * is installed. Real containers on a busybox rootfs, images from a registry on loopback.
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

const lines = (text: string) => text.trim().split("\n").filter((l) => l !== "");

/** Containers of every kind: running (web), exited 3 (db), exited 0 (done), created (new). */
async function fleet(t: TestEnv): Promise<Record<string, string>> {
  const ids: Record<string, string> = {};
  const make = async (name: string, args: string[]) => {
    ids[name] = ok(await t.run(args)).trim();
    // Distinct creation times, as before/since compare them.
    await new Promise((r) => setTimeout(r, 20));
  };
  await make("db", ["run", "-d", "--name", "db", "-l", "tier=db", "/bin/sh", "-c", "exit 3"]);
  await make("done", ["run", "-d", "--name", "done", "/bin/true"]);
  await make("web", [
    "run",
    "-d",
    "--name",
    "web",
    "-l",
    "tier=web",
    "-l",
    "x",
    "/bin/sleep",
    "300",
  ]);
  await make("new", ["create", "--name", "new", "/bin/sh", "-c", "echo a long command line here"]);
  await waitFor(
    () => {
      const out = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--quiet", new URL("../main.ts", import.meta.url).pathname, "ps", "-q"],
        env: t.env,
        cwd: t.cwd,
      }).outputSync();
      return lines(new TextDecoder().decode(out.stdout)).length === 1;
    },
    10_000,
    "db and done to exit",
  );
  return ids;
}

Deno.test(
  "ps: Docker's table, filters, -n, -l, -q, --no-trunc, -s and --format",
  opts,
  async () => {
    await using t = await TestEnv.create();
    const ids = await fleet(t);
    const ps = async (...args: string[]) => ok(await t.run(["ps", ...args]));
    const names = async (...args: string[]) => lines(await ps(...args, "--format", "{{.Names}}"));
    // Docker's columns, tabwriter's layout (at least 10 wide, 3 apart), newest first.
    const table = lines(await ps("-a"));
    assert.match(
      table[0]!,
      /^CONTAINER ID {3}IMAGE {5}COMMAND {18}CREATED +STATUS +PORTS {5}NAMES$/,
    );
    assert.match(
      table[1]!,
      /^[0-9a-f]{12} {3}alpine {4}"\/bin\/sh -c 'echo a …" +.* ago +Created +new$/,
    );
    assert.match(table[2]!, / alpine +"\/bin\/sleep 300" +.* ago +Up .* web$/);
    assert.match(table[3]!, /"\/bin\/true" +.* Exited \(0\) .* ago +done$/);
    assert.match(table[4]!, /Exited \(3\) .* ago +db$/);
    assert.deepEqual(await names(), ["web"]);
    assert.deepEqual(await names("-a"), ["new", "web", "done", "db"]);
    // Filters: a status, an exit code, names, labels, ids, before/since; one name's values are
    // alternatives, different names must all match.
    assert.deepEqual(await names("-f", "status=exited"), ["done", "db"]);
    assert.deepEqual(await names("-f", "status=created", "-f", "status=running"), ["new", "web"]);
    assert.deepEqual(await names("-a", "-f", "exited=3"), ["db"]);
    assert.deepEqual(await names("-a", "-f", "name=^d"), ["done", "db"]);
    assert.deepEqual(await names("-a", "-f", "label=tier"), ["web", "db"]);
    assert.deepEqual(await names("-a", "-f", "label=tier=db"), ["db"]);
    assert.deepEqual(await names("-a", "-f", "label=tier", "-f", "status=running"), ["web"]);
    assert.deepEqual(await names("-f", `id=${ids.db!.slice(0, 6)}`, "-a"), ["db"]);
    assert.deepEqual(await names("-f", "before=web"), ["done", "db"]);
    assert.deepEqual(await names("-f", "since=done"), ["new", "web"]);
    assert.deepEqual(await names("-a", "-f", "ancestor=alpine"), ["new", "web", "done", "db"]);
    assert.deepEqual(await names("-a", "-f", "ancestor=other"), []);
    // -n, -l, -q, --no-trunc.
    assert.deepEqual(await names("-n", "2"), ["new", "web"]);
    assert.deepEqual(await names("-l"), ["new"]);
    assert.deepEqual(lines(await ps("-aq", "-f", "status=exited")), [
      ids.done!.slice(0, 12),
      ids.db!.slice(0, 12),
    ]);
    const full = lines(await ps("-a", "--no-trunc", "-f", "name=new"));
    assert.match(
      full[1]!,
      new RegExp(`^${ids.new} +alpine +"/bin/sh -c 'echo a long command line here'"`),
    );
    // -s: the writable layer, and the root it sits on.
    const sized = lines(await ps("-s"));
    assert.match(sized[0]!, / NAMES {5}SIZE$/);
    assert.match(sized[1]!, / web {7}\d+(\.\d+)?k?B \(virtual \d+(\.\d+)?[kM]B\)$/);
    // --format: Docker's fields, table with headers, json.
    assert.equal(
      await ps("--format", '{{.Names}} {{.State}} {{.Label "tier"}} {{.Labels}} {{.Image}}'),
      "web running web tier=web,x= alpine\n",
    );
    assert.deepEqual(lines(await ps("-a", "--format", "table {{.Names}}\t{{.State}}")), [
      "NAMES     STATE",
      "new       created",
      "web       running",
      "done      exited",
      "db        exited",
    ]);
    const json = JSON.parse(await ps("--format", "json"));
    assert.deepEqual(Object.keys(json).sort(), [
      "Command",
      "CreatedAt",
      "ID",
      "Image",
      "Labels",
      "LocalVolumes",
      "Mounts",
      "Names",
      "Networks",
      "Ports",
      "RunningFor",
      "Size",
      "State",
      "Status",
    ]);
    assert.equal(json.ID, ids.web!.slice(0, 12));
    assert.match(json.CreatedAt, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+0000 UTC$/);
    // Bad input: a filter without "=" is a bad flag (125); an unknown filter, a bad status or
    // template, Docker's daemon refusals (1); each one line.
    for (
      const [args, code, re] of [
        [["-f", "nonsense"], 125, /^Invalid filter "nonsense": expected NAME=VALUE$/],
        [["-f", "color=red"], 1, /^Invalid filter "color": the filters here are id, name, /],
        [["-f", "status=sleeping"], 1, /^Invalid filter "status=sleeping"/],
        [["-f", "before=nosuch"], 1, /^No such container: nosuch$/],
        [["--format", "{{.ID"], 1, /^Template parsing error: unclosed action/],
        [["--format", "{{.Nope}}"], 1, /map has no entry for key "Nope"/],
        [["-n", "x"], 125, /^Invalid --last "x"/],
      ] as const
    ) {
      const r = await t.run(["ps", ...args]);
      assert.equal(r.code, code, `${args.join(" ")}: ${r.stderr}`);
      assert.equal(r.stdout, "");
      assert.equal(lines(r.stderr).length, 1, r.stderr);
      assert.match(r.stderr.replace(/^mini-docker: /, "").trim(), re);
    }
    ok(await t.run(["rm", "-f", "web", "db", "done", "new"]));
  },
);

Deno.test(
  "inspect: Docker's fields and times, templates, their errors, unknown containers",
  opts,
  async () => {
    await using t = await TestEnv.create();
    const ids = await fleet(t);
    const [web] = JSON.parse(ok(await t.run(["inspect", "web"])));
    assert.equal(web.Id, ids.web);
    assert.equal(web.Name, "/web");
    assert.match(web.Created, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$/);
    assert.deepEqual(Object.keys(web.State), [
      "Status",
      "Running",
      "Paused",
      "Restarting",
      "OOMKilled",
      "Dead",
      "Pid",
      "ExitCode",
      "Error",
      "StartedAt",
      "FinishedAt",
    ]);
    assert.equal(web.State.Status, "running");
    assert.equal(web.State.FinishedAt, "0001-01-01T00:00:00Z");
    assert.match(web.State.StartedAt, /^\d{4}-.*Z$/);
    assert.deepEqual(web.Config.Labels, { tier: "web", x: "" });
    assert.equal(web.Config.Entrypoint, null);
    assert.deepEqual(web.Config.Cmd, ["/bin/sleep", "300"]);
    assert.equal(web.Config.User, "");
    assert.deepEqual(web.HostConfig.RestartPolicy, { Name: "no", MaximumRetryCount: 0 });
    assert.deepEqual(web.Mounts, []);
    const [created] = JSON.parse(ok(await t.run(["inspect", "new"])));
    assert.equal(created.State.Status, "created");
    assert.equal(created.State.StartedAt, "0001-01-01T00:00:00Z");
    const [db] = JSON.parse(ok(await t.run(["inspect", "db"])));
    assert.equal(db.State.ExitCode, 3);
    assert.ok(Date.parse(db.State.FinishedAt) >= Date.parse(db.State.StartedAt));
    // Templates: the output of each container as it is found; json; a template that does not
    // parse is 64 before anything is printed; a missing field is 1 when reached.
    assert.equal(
      ok(await t.run(["inspect", "-f", "{{.Name}} {{.State.ExitCode}}", "db", "done"])),
      "/db 3\n/done 0\n",
    );
    assert.equal(JSON.parse(ok(await t.run(["inspect", "-f", "json", "db"])))[0].Id, ids.db);
    for (
      const [template, code, re] of [
        [
          "{{.State.Status",
          64,
          /^Template parsing error: unclosed action in "\{\{\.State\.Status"$/,
        ],
        ["{{if .Id}}", 64, /has no \{\{end\}\}/],
        ["{{nosuch .Id}}", 64, /function "nosuch" not defined/],
        ["{{.Nope}}", 1, /at <\.Nope>: map has no entry for key "Nope"$/],
      ] as const
    ) {
      const r = await t.run(["inspect", "-f", template, "web"]);
      assert.equal(r.code, code, r.stderr);
      assert.equal(r.stdout, "");
      assert.equal(lines(r.stderr).length, 1, r.stderr);
      assert.match(r.stderr.replace(/^mini-docker: /, "").trim(), re);
    }
    // Unknown containers: exit code 1, as Docker's rm and inspect; inspect prints what it found.
    const unknown = await t.run(["inspect", "nosuch"]);
    assert.equal(unknown.code, 1);
    assert.equal(unknown.stdout, "[]\n");
    assert.equal(unknown.stderr, "mini-docker: No such container: nosuch\n");
    const some = await t.run(["inspect", "-f", "{{.Name}}", "db", "nosuch"]);
    assert.deepEqual([some.code, some.stdout], [1, "/db\n"]);
    const rm = await t.run(["rm", "nosuch"]);
    assert.deepEqual([rm.code, rm.stderr], [1, "mini-docker: No such container: nosuch\n"]);
    ok(await t.run(["rm", "-f", "web", "db", "done", "new"]));
  },
);

Deno.test("images: filters, formats, --no-trunc", opts, async () => {
  await using registry = await TestRegistry.start();
  await using t = await TestEnv.create();
  const layer = { tar: makeTar(busyboxRootfs()), gzip: true };
  await registry.pushImage("app", "v1", { layers: [layer], config: { Labels: { team: "a" } } });
  await registry.pushImage("tool", "v2", {
    layers: [layer, { tar: makeTar([{ path: "etc/tool", data: "x" }]) }],
  });
  for (const ref of ["app:v1", "tool:v2"]) ok(await t.run(["pull", `${registry.host}/${ref}`]));
  const images = async (...args: string[]) => lines(ok(await t.run(["images", ...args])));
  const table = await images();
  assert.match(table[0]!, /^REPOSITORY +TAG {7}IMAGE ID {7}CREATED +SIZE$/);
  assert.equal(table.length, 3);
  const repo = (r: string) => `${registry.host}/${r}`;
  assert.deepEqual(await images("--format", "{{.Repository}}:{{.Tag}}", "-f", "label=team"), [
    `${repo("app")}:v1`,
  ]);
  assert.deepEqual(await images("--format", "{{.Tag}}", "-f", "label=team=b"), []);
  assert.deepEqual(await images("--format", "{{.Tag}}", "-f", `reference=*/tool`), ["v2"]);
  assert.deepEqual(await images("--format", "{{.Tag}}", "-f", "dangling=true"), []);
  assert.deepEqual(
    lines(ok(await t.run(["images", "--format", "{{.Tag}}", "-f", "dangling=false"]))).sort(),
    ["v1", "v2"],
  );
  const json = JSON.parse((await images("--format", "json", "-f", "label=team"))[0]!);
  assert.deepEqual(Object.keys(json).sort(), [
    "Containers",
    "CreatedAt",
    "CreatedSince",
    "Digest",
    "ID",
    "Repository",
    "SharedSize",
    "Size",
    "Tag",
    "UniqueSize",
    "VirtualSize",
  ]);
  assert.match(json.Digest, /^sha256:[0-9a-f]{64}$/);
  assert.match((await images("-q", "--no-trunc"))[0]!, /^sha256:[0-9a-f]{64}$/);
  assert.match((await images("-q"))[0]!, /^[0-9a-f]{12}$/);
  const bad = await t.run(["images", "-f", "dangling=maybe"]);
  assert.equal(bad.code, 1);
  assert.match(
    bad.stderr,
    /^mini-docker: Invalid filter "dangling=maybe": expected true or false\n$/,
  );
});

Deno.test({
  name: "shapes as Podman's: the ps columns, inspect's State and Config, its times",
  ignore: !HAVE_PODMAN,
  ...opts,
  async fn() {
    await using registry = await TestRegistry.start();
    await using t = await TestEnv.create();
    await registry.pushImage("bb", "v1", {
      layers: [{ tar: makeTar(busyboxRootfs()), gzip: true }],
      config: { Cmd: ["/bin/sh"] },
    });
    const ref = `${registry.host}/bb:v1`;
    const dir = await Deno.makeTempDir({ prefix: "mini-docker-podman-" });
    const podman = podmanIn(dir);
    const pod = (...args: string[]) => podman(args);
    try {
      ok(await pod("pull", "--tls-verify=false", ref));
      // Created, not started: Podman cannot start containers on a hybrid cgroup host (crun
      // refuses it), and a created container has every field already.
      ok(
        await pod("create", "--name", "web", "--network", "none", "-l", "a=b", ref, "sleep", "300"),
      );
      ok(
        await t.run([
          "create",
          "--name",
          "web",
          "--network",
          "none",
          "-l",
          "a=b",
          ref,
          "sleep",
          "300",
        ]),
      );
      const columns = (text: string) => lines(text)[0]!.split(/\s{2,}/);
      assert.deepEqual(columns(ok(await t.run(["ps", "-a"]))), columns(ok(await pod("ps", "-a"))));
      const row = (text: string) => lines(text)[1]!.split(/\s{2,}/);
      // The same image reference, command and status in the same columns (ours quotes the
      // command, as Docker's).
      const [ours, theirs] = [row(ok(await t.run(["ps", "-a"]))), row(ok(await pod("ps", "-a")))];
      assert.equal(ours[1], theirs[1]);
      assert.equal(ours[2], `"${theirs[2]}"`);
      assert.equal(ours[4], theirs[4]);
      const [mine] = JSON.parse(ok(await t.run(["inspect", "web"])));
      const [pods] = JSON.parse(ok(await pod("inspect", "web")));
      // Every field of Podman's State but its own (OciVersion, Health, checkpoints).
      const podmanOnly = ["OciVersion", "Health", "CheckpointedAt", "RestoredAt"];
      assert.deepEqual(
        Object.keys(mine.State),
        Object.keys(pods.State).filter((k) => !podmanOnly.includes(k)),
      );
      for (const key of Object.keys(mine.Config)) {
        if (key === "ExposedPorts") continue;
        assert.ok(key in pods.Config, `Config.${key}`);
      }
      for (
        const key of [
          "Id",
          "Created",
          "Path",
          "Args",
          "State",
          "Image",
          "Name",
          "RestartCount",
          "Driver",
          "Mounts",
          "Config",
          "HostConfig",
          "NetworkSettings",
          "GraphDriver",
          "ResolvConfPath",
          "HostnamePath",
          "HostsPath",
        ]
      ) {
        assert.ok(key in pods && key in mine, key);
      }
      assert.deepEqual(mine.Config.Cmd, pods.Config.Cmd);
      assert.deepEqual(mine.Config.Labels, pods.Config.Labels);
      assert.equal(mine.State.StartedAt, pods.State.StartedAt); // Go's zero time
      const go = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$/;
      assert.match(mine.Created, go);
      assert.match(pods.Created, go);
      // Where Podman is not Docker: Name has Docker's "/", and inspect of an unknown container
      // exits 1 as Docker's (Podman: 125); rm of one, 1 in both.
      assert.equal(mine.Name, `/${pods.Name}`);
      assert.equal((await t.run(["rm", "nosuch"])).code, (await pod("rm", "nosuch")).code);
      ok(await t.run(["rm", "web"]));
    } finally {
      await pod("rm", "-f", "web");
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test(
  "image prune: dangling images, -a every unused one; system df counts them",
  opts,
  async () => {
    await using registry = await TestRegistry.start();
    await using t = await TestEnv.create();
    const base = makeTar(busyboxRootfs());
    const push = (repo: string, marker: string) =>
      registry.pushImage(repo, "v1", {
        layers: [{ tar: base, gzip: true }, { tar: makeTar([{ path: "marker", data: marker }]) }],
      });
    const old = await push("app", "old");
    ok(await t.run(["pull", `${registry.host}/app:v1`]));
    await push("app", "new"); // the tag moves: the old image is dangling
    ok(await t.run(["pull", `${registry.host}/app:v1`]));
    await push("tool", "tool");
    ok(await t.run(["pull", `${registry.host}/tool:v1`]));
    const ids = async (...args: string[]) =>
      lines(ok(await t.run(["images", "-q", "--no-trunc", ...args]))).sort();
    assert.deepEqual(await ids("-f", "dangling=true"), [old.config.digest]);
    ok(
      await t.run(["run", "-d", "--name", "user", `${registry.host}/tool:v1`, "/bin/sleep", "300"]),
    );
    const df = lines(ok(await t.run(["system", "df"])));
    assert.match(df[1]!, /^Images {10}3 {9}1 {9}\S+B +\S+B \(\d+%\)$/);
    // Dangling only: the old image, its own layer with it (the shared one stays).
    const pruned = ok(await t.run(["image", "prune", "-f"]));
    assert.match(
      pruned,
      new RegExp(
        `^Deleted Images:\\nuntagged: ${registry.host}/app@sha256:[0-9a-f]{64}\\ndeleted: ${old.config.digest}\\n\\nTotal reclaimed space: \\d+B\\n$`,
      ),
    );
    assert.equal((await ids()).length, 2);
    // -a: every image no container uses; tool:v1 is in use.
    const all = ok(await t.run(["image", "prune", "-a", "-f"]));
    assert.match(all, new RegExp(`untagged: ${registry.host}/app:v1`));
    assert.deepEqual(lines(ok(await t.run(["images", "--format", "{{.Repository}}"]))), [
      `${registry.host}/tool`,
    ]);
    ok(await t.run(["rm", "-f", "user"]));
    const sys = ok(await t.run(["system", "prune", "-a", "-f"]));
    assert.match(sys, /deleted: sha256:/);
    assert.deepEqual(await ids(), []);
  },
);
