/**
 * `cp` and `export`: Docker's path rules in both directions, tar streams on stdin and stdout,
 * `-a`, running and stopped containers; and the escapes `docker cp` once allowed: container
 * symlinks to `/`, `/etc` and `../../..`, archives with `../` entries and absolute links, and a
 * container that swaps a path for a symlink while copies run (CVE-2018-15664's race), checked
 * against a canary on the host; and Podman as a peer (it imports what export writes, and cp -
 * unpacks what it exports). Real containers on a busybox rootfs, without networks.
 */
import assert from "node:assert/strict";
import { type Result, TestEnv } from "./helpers.ts";
import { copiedSize, splitCopyArg } from "../cmd/cp.ts";
import { HAVE_PODMAN, podmanIn, resetPodman } from "./helpers/podman.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

function ok(r: Result): string {
  assert.equal(r.code, 0, `exit ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/** A failure as Docker reports it: exit 1, one line that says `text`. */
function fails(r: Result, text: string | RegExp): void {
  assert.equal(r.code, 1, `expected exit 1, got ${r.code}: ${r.stdout}${r.stderr}`);
  const lines = r.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, `one line: ${r.stderr}`);
  if (typeof text === "string") assert.ok(lines[0]!.includes(text), lines[0]);
  else assert.match(lines[0]!, text);
}

/** Removes containers, whichever exist. */
async function removeAll(t: TestEnv, ...names: string[]): Promise<void> {
  for (const name of names) await t.run(["rm", "-f", name]);
}

/** Waits until `path` exists in the container (its command has set it up). */
async function waitReady(t: TestEnv, name: string, path = "/ready"): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if ((await t.run(["exec", name, "test", "-e", path])).code === 0) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${name}: ${path} never appeared`);
}

/** Runs mini-docker with bytes on stdin; its stdout as bytes. */
async function runBytes(
  t: TestEnv,
  args: string[],
  input?: Uint8Array,
): Promise<{ code: number; stdout: Uint8Array; stderr: string }> {
  const child = t.spawn(args, { stdin: input === undefined ? "null" : "piped" });
  if (input !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(input);
    await w.close();
  }
  const out = await child.output();
  return { code: out.code, stdout: out.stdout, stderr: new TextDecoder().decode(out.stderr) };
}

/** A tar archive made by GNU tar from `dir` (its arguments after -C dir). */
function gnuTar(dir: string, ...args: string[]): Uint8Array {
  const out = new Deno.Command("tar", { args: ["-c", "-C", dir, ...args], stdout: "piped" })
    .outputSync();
  assert.ok(out.success, "tar -c");
  return out.stdout;
}

/** The member names of a tar archive, by GNU tar. */
async function tarList(bytes: Uint8Array): Promise<string[]> {
  const child = new Deno.Command("tar", { args: ["-t"], stdin: "piped", stdout: "piped" }).spawn();
  const w = child.stdin.getWriter();
  const [out] = await Promise.all([child.output(), w.write(bytes).then(() => w.close())]);
  assert.ok(out.success, "tar -t");
  return new TextDecoder().decode(out.stdout).trim().split("\n");
}

/** A tar archive written by hand: entries that GNU tar would not make. */
function handTar(
  entries: { name: string; type?: "0" | "2" | "1" | "5"; data?: string; link?: string }[],
): Uint8Array {
  const enc = new TextEncoder();
  const blocks: Uint8Array[] = [];
  for (const e of entries) {
    const data = enc.encode(e.data ?? "");
    const h = new Uint8Array(512);
    const put = (off: number, s: string) => h.set(enc.encode(s), off);
    put(0, e.name);
    put(100, "0000644\0");
    put(108, "0000000\0");
    put(116, "0000000\0");
    put(124, data.length.toString(8).padStart(11, "0") + "\0");
    put(136, "00000000000\0");
    h.fill(0x20, 148, 156);
    put(156, e.type ?? "0");
    put(157, e.link ?? "");
    put(257, "ustar\0");
    put(263, "00");
    const sum = h.reduce((a, b) => a + b, 0);
    put(148, sum.toString(8).padStart(6, "0") + "\0 ");
    blocks.push(h);
    if (data.length > 0) {
      const body = new Uint8Array(Math.ceil(data.length / 512) * 512);
      body.set(data);
      blocks.push(body);
    }
  }
  blocks.push(new Uint8Array(1024));
  const out = new Uint8Array(blocks.reduce((n, b) => n + b.length, 0));
  let at = 0;
  for (const b of blocks) {
    out.set(b, at);
    at += b.length;
  }
  return out;
}

/** Files under `dir` whose names are our temporary files (what a failed copy must not leave). */
function tempFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of Deno.readDirSync(d)) {
      if (e.name.includes(".mini-docker-")) out.push(`${d}/${e.name}`);
      if (e.isDirectory) walk(`${d}/${e.name}`);
    }
  };
  walk(dir);
  return out;
}

Deno.test("cp arguments and sizes: Docker's split and summary", () => {
  assert.deepEqual(splitCopyArg("web:/etc"), { container: "web", path: "/etc" });
  assert.deepEqual(splitCopyArg("/abs:path"), { path: "/abs:path" });
  assert.deepEqual(splitCopyArg("./file:name"), { path: "./file:name" });
  assert.deepEqual(splitCopyArg("plain"), { path: "plain" });
  assert.deepEqual(splitCopyArg("-"), { path: "-" });
  assert.equal(copiedSize(512), "512B");
  assert.equal(copiedSize(2048), "2.05kB");
  assert.equal(copiedSize(10_240_000), "10.2MB");
});

Deno.test(
  "cp with a running container: files, directories, SRC/., tar streams, -a, Docker's path rules",
  opts,
  async () => {
    await using t = await TestEnv.create();
    ok(
      await t.run([
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "none",
        "/bin/sh",
        "-c",
        "mkdir -p /data/sub && echo hello > /data/a.txt && echo deep > /data/sub/b && " +
        "chown 123:456 /data/a.txt && chmod 640 /data/a.txt && ln -s a.txt /data/link && " +
        "touch /ready && exec sleep 300",
      ]),
    );
    const host = `${t.dir}/host`;
    Deno.mkdirSync(host);
    try {
      await waitReady(t, "web");
      // A file to a path that does not exist; to an existing file (overwritten); into a dir.
      ok(await t.run(["cp", "web:/data/a.txt", `${host}/copy.txt`]));
      assert.equal(Deno.readTextFileSync(`${host}/copy.txt`), "hello\n");
      const st = Deno.statSync(`${host}/copy.txt`);
      assert.equal(st.mode! & 0o777, 0o640, "mode kept");
      assert.equal(st.uid, 0, "owned by the invoking user without -a");
      Deno.writeTextFileSync(`${host}/old.txt`, "old content, longer than the new one\n");
      ok(await t.run(["cp", "web:/data/a.txt", `${host}/old.txt`]));
      assert.equal(Deno.readTextFileSync(`${host}/old.txt`), "hello\n");
      Deno.mkdirSync(`${host}/into`);
      ok(await t.run(["cp", "web:/data/a.txt", `${host}/into`]));
      assert.equal(Deno.readTextFileSync(`${host}/into/a.txt`), "hello\n");
      // On a terminal, Docker's summary (the tar stream's size); -q, none.
      const shown = await t.runOnTerminal(["cp", "web:/data/a.txt", `${host}/t.txt`], "");
      assert.equal(shown.code, 0, shown.stdout);
      assert.equal(shown.stdout.trim(), `Successfully copied 2.05kB to ${host}/t.txt`);
      const quiet = await t.runOnTerminal(["cp", "-q", "web:/data/a.txt", `${host}/t.txt`], "");
      assert.equal(quiet.stdout.trim(), "");
      // -a keeps the owner.
      ok(await t.run(["cp", "-a", "web:/data/a.txt", `${host}/owned.txt`]));
      const owned = Deno.statSync(`${host}/owned.txt`);
      assert.deepEqual([owned.uid, owned.gid], [123, 456]);
      // A directory: created when missing, copied into an existing one under its name, and
      // its contents only with /.
      ok(await t.run(["cp", "web:/data", `${host}/fresh`]));
      assert.equal(Deno.readTextFileSync(`${host}/fresh/sub/b`), "deep\n");
      assert.equal(Deno.readLinkSync(`${host}/fresh/link`), "a.txt");
      ok(await t.run(["cp", "web:/data", `${host}/into`]));
      assert.equal(Deno.readTextFileSync(`${host}/into/data/sub/b`), "deep\n");
      ok(await t.run(["cp", "web:data/.", `${host}/into`]));
      assert.equal(Deno.readTextFileSync(`${host}/into/sub/b`), "deep\n");
      // A symlink is copied as itself; -L copies what it points to.
      ok(await t.run(["cp", "web:/data/link", `${host}/l1`]));
      assert.equal(Deno.readLinkSync(`${host}/l1`), "a.txt");
      ok(await t.run(["cp", "-L", "web:/data/link", `${host}/l2`]));
      assert.equal(Deno.readTextFileSync(`${host}/l2`), "hello\n");
      // The whole root of a running container: its files, and the kernel's filesystems (/proc,
      // /sys, /dev/pts) as empty mount points, as Docker's cp sees them.
      ok(await t.run(["cp", "web:/", `${host}/root`]));
      assert.equal(Deno.readTextFileSync(`${host}/root/data/sub/b`), "deep\n");
      for (const empty of ["proc", "sys", "dev/pts"]) {
        assert.deepEqual([...Deno.readDirSync(`${host}/root/${empty}`)], [], empty);
      }
      // A tar stream on stdout, read back by GNU tar.
      const tar = await runBytes(t, ["cp", "web:/data", "-"]);
      assert.equal(tar.code, 0, tar.stderr);
      assert.deepEqual(
        (await tarList(tar.stdout)).sort(),
        ["data/", "data/a.txt", "data/link", "data/sub/", "data/sub/b"],
      );

      // Into the container: a file, a directory, contents, a tar stream on stdin, -a.
      Deno.mkdirSync(`${host}/src/d/e`, { recursive: true });
      Deno.writeTextFileSync(`${host}/src/d/f1`, "one\n");
      Deno.writeTextFileSync(`${host}/src/d/e/f2`, "two\n");
      Deno.chownSync(`${host}/src/d/f1`, 7, 8);
      ok(await t.run(["cp", `${host}/src/d/f1`, "web:/data/"]));
      ok(await t.run(["cp", `${host}/src/d`, "web:/newd"]));
      ok(await t.run(["cp", `${host}/src/d/.`, "web:/data/sub"]));
      ok(await t.run(["cp", "-a", `${host}/src/d`, "web:/data"]));
      const stream = await runBytes(
        t,
        ["cp", "-", "web:/data/sub"],
        gnuTar(`${host}/src`, "d"),
      );
      assert.equal(stream.code, 0, stream.stderr);
      const listing = ok(
        await t.run([
          "exec",
          "web",
          "/bin/sh",
          "-c",
          "cat /data/f1 /newd/e/f2 /data/sub/f1 /data/sub/d/e/f2; stat -c '%u:%g %n' /data/f1 /data/d/f1",
        ]),
      );
      assert.equal(listing, "one\ntwo\none\ntwo\n0:0 /data/f1\n7:8 /data/d/f1\n");

      // Docker's refusals: a directory onto a file, a file to a missing directory path, a
      // stream onto a file, copies between containers or between two local paths; and not
      // found: in the container, on the host, an unknown container, a missing parent. Each is
      // independent of the others: they run at once.
      const refusals: [string[], string][] = [
        [["cp", "web:/data", `${host}/copy.txt`], "not a directory"],
        [["cp", "web:/data/a.txt", `${host}/nodir/`], "must exist"],
        [["cp", "-", "web:/data/a.txt"], "must be a directory"],
        [["cp", "web:/a", "web:/b"], "between containers"],
        [["cp", `${host}/a`, `${host}/b`], "at least one container"],
        [["cp", "web:/missing", `${host}/m`], "Could not find the file /missing in container web"],
        [["cp", `${host}/missing`, "web:/tmp/"], "no such file or directory"],
        [["cp", "nosuch:/etc/passwd", `${host}/m`], "No such container: nosuch"],
        [
          ["cp", `${host}/src/d/f1`, "web:/no/such/file"],
          "Could not find the file /no/such in container web",
        ],
        [["cp", "web:/data/a.txt", `${host}/no/such/file`], "does not exist"],
      ];
      const results = await Promise.all(refusals.map(([args]) => t.run(args)));
      results.forEach((r, i) => fails(r, refusals[i]![1]));
      for (const p of ["nodir", "m", "no"]) assert.throws(() => Deno.statSync(`${host}/${p}`), p);
      // A copy refused half-way removes what it had made, on either side.
      Deno.mkdirSync(`${host}/clash`);
      Deno.writeTextFileSync(`${host}/clash/sub`, "a file where the container has a directory\n");
      fails(await t.run(["cp", "web:/data/.", `${host}/clash`]), "non-directory");
      assert.deepEqual([...Deno.readDirSync(`${host}/clash`)].map((e) => e.name), ["sub"]);
      Deno.mkdirSync(`${host}/conflict/a.txt`, { recursive: true });
      Deno.writeTextFileSync(`${host}/conflict/0-first`, "first\n");
      fails(await t.run(["cp", `${host}/conflict/.`, "web:/data"]), "non-directory");
      assert.equal(
        (await t.run(["exec", "web", "ls", "/data/0-first"])).code,
        1,
        "a file made before the refusal is removed again",
      );
      assert.deepEqual(tempFiles(host), []);
    } finally {
      await removeAll(t, "web");
    }
  },
);

Deno.test(
  "cp with stopped containers (created, exited); export read back by tar and compared; diff",
  opts,
  async () => {
    await using t = await TestEnv.create();
    const host = `${t.dir}/host`;
    Deno.mkdirSync(host);
    try {
      Deno.writeTextFileSync(`${host}/in.txt`, "put before the start\n");
      // Created, never started: the file is there when it starts.
      ok(await t.run(["create", "--name", "job", "--network", "none", "/bin/cat", "/in.txt"]));
      ok(await t.run(["cp", `${host}/in.txt`, "job:/"]));
      assert.equal(ok(await t.run(["start", "-a", "job"])), "put before the start\n");
      // Exited: its writable layer, copied out and in.
      ok(
        await t.run([
          "run",
          "-d",
          "--name",
          "done",
          "--network",
          "none",
          "/bin/sh",
          "-c",
          "mkdir -p /out && echo result > /out/r.txt && rm /etc/group",
        ]),
      );
      ok(await t.run(["wait", "done"]));
      ok(await t.run(["cp", "done:/out/r.txt", `${host}/r.txt`]));
      assert.equal(Deno.readTextFileSync(`${host}/r.txt`), "result\n");
      ok(await t.run(["cp", `${host}/in.txt`, "done:/out/"]));
      const back = await runBytes(t, ["cp", "done:/out", "-"]);
      assert.deepEqual((await tarList(back.stdout)).sort(), ["out/", "out/in.txt", "out/r.txt"]);
      fails(
        await t.run(["cp", "done:/etc/group", `${host}/g`]),
        "Could not find the file /etc/group in container done",
      );
      // export of a stopped container: its layers, its deletions applied.
      const stopped = await runBytes(t, ["export", "done"]);
      assert.equal(stopped.code, 0, stopped.stderr);
      const files = await tarList(stopped.stdout);
      assert.ok(files.includes("out/r.txt") && files.includes("out/in.txt"));
      assert.ok(files.includes("bin/busybox") && !files.includes("etc/group"));

      // export: every file of the container's filesystem and nothing mounted on it, as the
      // container itself lists them (find -xdev), from a running container; to stdout or a file.
      ok(
        await t.run([
          "run",
          "-d",
          "--name",
          "live",
          "--network",
          "none",
          "/bin/sh",
          "-c",
          "echo x > /added && rm /etc/passwd && touch /ready && exec sleep 300",
        ]),
      );
      await waitReady(t, "live");
      const found = ok(await t.run(["exec", "live", "find", "/", "-xdev"])).split("\n")
        .map((l) => l.replace(/^\//, "")).filter((l) => l !== "").sort();
      const exported = await runBytes(t, ["export", "live"]);
      assert.equal(exported.code, 0, exported.stderr);
      const names = (await tarList(exported.stdout)).map((n) => n.replace(/\/$/, "")).sort();
      assert.deepEqual(names, found);
      assert.ok(names.includes("added") && !names.includes("etc/passwd"));
      assert.ok(names.includes("proc") && !names.some((n) => n.startsWith("proc/")));
      // diff: Docker's lines, without what the start put there for the mounts.
      assert.equal(
        ok(await t.run(["diff", "live"])),
        "A /added\nC /etc\nD /etc/passwd\nA /ready\n",
      );
      fails(await t.run(["diff", "nosuch"]), "No such container: nosuch");
      ok(await t.run(["export", "-o", `${host}/live.tar`, "live"]));
      const file = Deno.readFileSync(`${host}/live.tar`);
      assert.deepEqual((await tarList(file)).map((n) => n.replace(/\/$/, "")).sort(), found);
      // Bad input: one line, nothing written.
      fails(await t.run(["export", "-o", `${host}/no/such.tar`, "live"]), "Cannot write");
      fails(await t.run(["export", "-o", `${host}/x.tar`, "nosuch"]), "No such container");
      assert.throws(() => Deno.statSync(`${host}/x.tar`));
      assert.deepEqual(tempFiles(host), []);
    } finally {
      await removeAll(t, "live", "done", "job");
    }
  },
);

Deno.test(
  "cp never leaves the container: symlinks to /, /etc and ../../.., hostile archives, a symlink-swap race",
  opts,
  async () => {
    await using t = await TestEnv.create();
    const host = `${t.dir}/host`;
    Deno.mkdirSync(host);
    // A canary on the host, at a path the container's symlinks name.
    const canary = await Deno.makeTempDir({ prefix: "mini-docker-canary-" });
    const secret = "HOST SECRET, never to be copied\n";
    Deno.writeTextFileSync(`${canary}/secret`, secret);
    const unique = canary.split("/").pop()!;
    try {
      ok(
        await t.run([
          "run",
          "-d",
          "--name",
          "evil",
          "--network",
          "none",
          "/bin/sh",
          "-c",
          [
            "ln -s / /x",
            "ln -s /etc /e",
            "mkdir -p /deep/a",
            "ln -s ../../../../../.. /deep/a/b",
            `ln -s ${canary} /c`,
            "mkdir -p /w/dir && echo inside > /w/dir/secret",
            "touch /ready",
            // CVE-2018-15664's exchange, with busybox: /w/dir is a real directory or a symlink
            // to the canary's path (absolute, or through ../), back and forth.
            "while [ ! -e /go ]; do sleep 0.1; done",
            `while [ -e /go ]; do mv /w/dir /w/real; ln -s ${canary} /w/dir; rm /w/dir; ` +
            `ln -s ../../../../..${canary} /w/dir; rm /w/dir; mv /w/real /w/dir; done`,
          ].join(" && "),
        ]),
      );
      await waitReady(t, "evil");
      const containerPasswd = ok(await t.run(["exec", "evil", "cat", "/etc/passwd"]));
      assert.notEqual(containerPasswd, Deno.readTextFileSync("/etc/passwd"));
      // Out: the links themselves; -L and paths through them resolve in the container. In:
      // through the same links, files land in the container, never on the host. (At once.)
      Deno.writeTextFileSync(`${host}/planted`, "planted\n");
      // (Out first, then in: a copy out of /etc would see the temporary name of a file that a
      // copy into it is writing.)
      const [x, e, etc, p1, p2, s1] = await Promise.all([
        t.run(["cp", "evil:/x", `${host}/x`]),
        t.run(["cp", "evil:/e", `${host}/e`]),
        t.run(["cp", "-L", "evil:/e", `${host}/etc-copy`]),
        t.run(["cp", "evil:/x/etc/passwd", `${host}/p1`]),
        t.run(["cp", "evil:/deep/a/b/etc/passwd", `${host}/p2`]),
        t.run(["cp", "evil:/c/secret", `${host}/s`]),
      ]);
      const [in1, in2, in3, in4] = await Promise.all([
        t.run(["cp", `${host}/planted`, `evil:/x/${unique}-1`]),
        t.run(["cp", `${host}/planted`, `evil:/deep/a/b/tmp/${unique}-2`]),
        t.run(["cp", `${host}/planted`, "evil:/e"]),
        t.run(["cp", `${host}/planted`, "evil:/c/planted"]),
      ]);
      for (const r of [x, e, etc, p1, p2, in1, in2, in3]) ok(r);
      assert.equal(Deno.readLinkSync(`${host}/x`), "/");
      assert.equal(Deno.readLinkSync(`${host}/e`), "/etc");
      assert.equal(Deno.readTextFileSync(`${host}/etc-copy/passwd`), containerPasswd);
      assert.equal(Deno.readTextFileSync(`${host}/p1`), containerPasswd);
      assert.equal(Deno.readTextFileSync(`${host}/p2`), containerPasswd);
      fails(s1, "Could not find the file /c/secret");
      fails(in4, "Could not find the file");
      assert.equal(
        ok(
          await t.run(["exec", "evil", "cat", `/${unique}-1`, `/tmp/${unique}-2`, "/etc/planted"]),
        ),
        "planted\n".repeat(3),
      );
      for (const p of [`/${unique}-1`, `/tmp/${unique}-2`, "/etc/planted"]) {
        assert.throws(() => Deno.statSync(p), `${p} was written on the host`);
      }
      // Hostile archives: ../ entries, a file through an absolute symlink made by the archive,
      // a hard link out: refused, and what was extracted before the refusal is removed.
      const hostile = [
        [{ name: "ok-1" }, { name: `../../../../..${canary}/pwned` }],
        [{ name: "ok-2" }, { name: "esc", type: "2" as const, link: canary }, {
          name: "esc/pwned",
        }],
        [{ name: "ok-3" }, { name: "hl", type: "1" as const, link: "../../../etc/passwd" }],
      ];
      for (const entries of hostile) {
        const r = await runBytes(t, ["cp", "-", "evil:/tmp"], handTar(entries));
        assert.equal(r.code, 1, r.stderr);
      }
      assert.equal(ok(await t.run(["exec", "evil", "ls", "-A", "/tmp"])), `${unique}-2\n`);
      // An absolute symlink in an archive is only text: it lands as is, and stays inside.
      const links = handTar([{ name: "abs", type: "2", link: "/etc" }]);
      assert.equal((await runBytes(t, ["cp", "-", "evil:/tmp"], links)).code, 0);
      ok(await t.run(["cp", `${host}/planted`, "evil:/tmp/abs/via-abs"]));
      assert.equal(ok(await t.run(["exec", "evil", "cat", "/etc/via-abs"])), "planted\n");
      assert.throws(() => Deno.statSync("/etc/via-abs"));

      // The race: copies out and in while /w/dir flips between a directory and a symlink to
      // the canary. Each copy sees the container's directory or fails to find the file.
      ok(await t.run(["exec", "evil", "touch", "/go"]));
      for (let round = 0; round < 6; round++) {
        const [file, dir, into] = await Promise.all([
          t.run(["cp", "evil:/w/dir/secret", `${host}/race-${round}`]),
          t.run(["cp", "evil:/w/dir", `${host}/race-dir-${round}`]),
          t.run(["cp", `${host}/planted`, "evil:/w/dir/"]),
        ]);
        for (const r of [file, dir, into]) {
          assert.ok(r.code === 0 || r.code === 1, `${r.code}: ${r.stderr}`);
        }
        if (file.code === 0) {
          assert.equal(Deno.readTextFileSync(`${host}/race-${round}`), "inside\n");
        }
        if (dir.code === 0) {
          const st = Deno.lstatSync(`${host}/race-dir-${round}`);
          if (st.isSymlink) continue; // copied while it was the link: the link itself
          const names = [...Deno.readDirSync(`${host}/race-dir-${round}`)].map((e) => e.name);
          for (const name of names) {
            assert.notEqual(Deno.readTextFileSync(`${host}/race-dir-${round}/${name}`), secret);
          }
        }
      }
      ok(await t.run(["exec", "evil", "rm", "/go"]));
      // The canary was neither read nor written.
      assert.deepEqual([...Deno.readDirSync(canary)].map((e) => e.name), ["secret"]);
      assert.equal(Deno.readTextFileSync(`${canary}/secret`), secret);
      for (const e of Deno.readDirSync(host)) {
        if (e.isFile) assert.notEqual(Deno.readTextFileSync(`${host}/${e.name}`), secret);
      }
      // (A copy of /w/dir may hold the temporary name of a file that a copy into it was writing.)
      assert.deepEqual(tempFiles(host).filter((p) => !p.includes("/race-dir-")), []);
    } finally {
      await removeAll(t, "evil");
      Deno.removeSync(canary, { recursive: true });
    }
  },
);

Deno.test({
  name: "Podman as a peer: it imports what export writes, and cp - unpacks what it exports",
  ignore: !HAVE_PODMAN,
  ...opts,
  async fn() {
    await using t = await TestEnv.create();
    const dir = await Deno.makeTempDir({ prefix: "mini-docker-podman-" });
    const podman = podmanIn(dir);
    const pod = async (args: string[], stdin?: Uint8Array) => {
      const out = await podman(args, stdin);
      assert.equal(out.code, 0, `podman ${args.join(" ")}: ${out.stderr}`);
      return out.bytes;
    };
    try {
      ok(
        await t.run([
          "run",
          "-d",
          "--name",
          "src",
          "--network",
          "none",
          "/bin/sh",
          "-c",
          "echo peer > /added && rm /etc/group && ln -s /etc/passwd /pw",
        ]),
      );
      ok(await t.run(["wait", "src"]));
      ok(await t.run(["export", "-o", `${dir}/src.tar`, "src"]));
      const ours = Deno.readFileSync(`${dir}/src.tar`);
      // Podman reads our archive into an image, and writes its container's filesystem back.
      await pod(["import", `${dir}/src.tar`, "localhost/peer:1"]);
      await pod(["create", "--name", "pc", "--network", "none", "localhost/peer:1", "/bin/true"]);
      const theirs = await pod(["export", "pc"]);
      const members = async (tar: Uint8Array) =>
        (await tarList(tar)).map((n) => n.replace(/^\.\//, "").replace(/\/$/, "")).filter((n) =>
          n !== "" && n !== "."
        ).sort();
      assert.deepEqual(await members(theirs), await members(ours));
      // And cp - unpacks Podman's archive into a container.
      ok(await t.run(["create", "--name", "kept", "--network", "none", "/bin/true"]));
      const into = await runBytes(t, ["cp", "-", "kept:/tmp"], theirs);
      assert.equal(into.code, 0, into.stderr);
      const back = await runBytes(t, ["cp", "kept:/tmp/added", "-"]);
      assert.deepEqual(await tarList(back.stdout), ["added"]);
      ok(await t.run(["cp", "kept:/tmp/pw", `${dir}/pw`]));
      assert.equal(Deno.readLinkSync(`${dir}/pw`), "/etc/passwd");
      ok(await t.run(["cp", "kept:/tmp/added", `${dir}/added`]));
      assert.equal(Deno.readTextFileSync(`${dir}/added`), "peer\n");
    } finally {
      await removeAll(t, "src", "kept");
      await resetPodman(dir);
    }
  },
});

Deno.test(
  "cp with a stopped container's volumes: a named volume and a bind are where its start puts them",
  opts,
  async () => {
    await using t = await TestEnv.create();
    const host = await Deno.makeTempDir({ dir: t.dir });
    ok(await t.run(["volume", "create", "data"]));
    ok(
      await t.run([
        "create",
        "--name",
        "v",
        "-v",
        "data:/data",
        "-v",
        `${host}:/host`,
        "/bin/true",
      ]),
    );
    const file = `${t.dir}/in.txt`;
    await Deno.writeTextFile(file, "into the volume\n");
    ok(await t.run(["cp", file, "v:/data/in.txt"]));
    ok(await t.run(["cp", file, "v:/host/in.txt"]));
    // Both landed in what is mounted there, not in the container's writable layer.
    assert.equal(await Deno.readTextFile(`${host}/in.txt`), "into the volume\n");
    const other = ok(await t.run(["run", "--rm", "-v", "data:/d", "/bin/cat", "/d/in.txt"]));
    assert.equal(other, "into the volume\n");
    ok(await t.run(["cp", "v:/data/in.txt", `${t.dir}/out.txt`]));
    assert.equal(await Deno.readTextFile(`${t.dir}/out.txt`), "into the volume\n");
    ok(await t.run(["rm", "v"]));
    ok(await t.run(["volume", "rm", "data"]));
  },
);
