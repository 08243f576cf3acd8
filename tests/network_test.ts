/**
 * Networking, for real: the default bridge network and user-defined ones with netavark, web and
 * UDP servers in containers reached through published ports from the host's loopback, from the
 * host's other addresses, from a namespace that plays an outside client, and from other
 * containers; names and aliases resolved on user-defined networks; networks isolated from each
 * other; concurrent runs with distinct addresses; bad input; and what killed mini-docker
 * processes leave, cleaned by the next ps/prune. Everything stays on loopback, in namespaces the
 * test creates and on subnets of its own (TestEnv), and TestEnv's dispose checks that no
 * endpoint, namespace, veth, bridge, rule or DNS server is left.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { SLOWDOWN, startRunning, TestEnv, waitFor } from "./helpers.ts";
import { busyboxRootfs, TestRegistry } from "./helpers/image_registry.ts";
import { makeTar } from "./helpers/image_tar.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** A web server's command: busybox httpd in the foreground, serving `text`. */
function httpd(text: string, port = 80): string[] {
  return [
    "/bin/sh",
    "-c",
    `mkdir -p /www && echo ${text} >/www/index.html && echo ready && exec httpd -f -p ${port} -h /www`,
  ];
}

/** A TCP port that nothing uses right now. */
function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Runs a host command; its output, or a failure with its stderr. */
async function sh(cmd: string[], ok = true): Promise<{ code: number; out: string }> {
  const r = await new Deno.Command(cmd[0]!, {
    args: cmd.slice(1),
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  const out = new TextDecoder().decode(r.stdout);
  if (ok && !r.success) {
    throw new Error(`${cmd.join(" ")}: ${new TextDecoder().decode(r.stderr)}`);
  }
  return { code: r.code, out };
}

/** GETs a URL from this (the host's) process. */
async function get(url: string): Promise<string> {
  const r = await fetch(url, { signal: AbortSignal.timeout(10_000 * SLOWDOWN) });
  return await r.text();
}

/**
 * A client outside the host: a network namespace of its own, linked to the host by a veth pair
 * on a /30 of the test's pool. The host's side is one more address of the host.
 */
class Outside implements AsyncDisposable {
  readonly ns: string;
  readonly hostIp: string;
  readonly clientIp: string;

  private constructor(tag: string, octet: number) {
    this.ns = `mdo-${tag}`;
    this.hostIp = `10.${octet}.252.1`;
    this.clientIp = `10.${octet}.252.2`;
  }

  static async create(t: TestEnv): Promise<Outside> {
    const o = new Outside(crypto.randomUUID().slice(0, 8), t.poolOctet);
    const ip = (...args: string[]) => sh(["ip", ...args]);
    await ip("netns", "add", o.ns);
    await ip("link", "add", o.ns, "type", "veth", "peer", "name", "eth0", "netns", o.ns);
    await ip("addr", "add", `${o.hostIp}/30`, "dev", o.ns);
    await ip("link", "set", o.ns, "up");
    await ip("-n", o.ns, "addr", "add", `${o.clientIp}/30`, "dev", "eth0");
    await ip("-n", o.ns, "link", "set", "eth0", "up");
    await ip("-n", o.ns, "link", "set", "lo", "up");
    await ip("-n", o.ns, "route", "add", "default", "via", o.hostIp);
    return o;
  }

  /** Runs a command in the outside namespace. */
  exec(cmd: string[], ok = true) {
    return sh(["ip", "netns", "exec", this.ns, ...cmd], ok);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await sh(["ip", "netns", "del", this.ns], false);
  }
}

/** The UDP echo probe (tests/probes/udp_echo.c), built static and cached by its source's hash. */
async function udpEcho(): Promise<string> {
  const source = new URL("./probes/udp_echo.c", import.meta.url).pathname;
  const hash = createHash("sha256").update(Deno.readTextFileSync(source)).digest("hex");
  const binary = new URL(`./.cache/probes/udp_echo-${hash.slice(0, 16)}`, import.meta.url)
    .pathname;
  try {
    Deno.statSync(binary);
    return binary;
  } catch { /* build it */ }
  Deno.mkdirSync(binary.slice(0, binary.lastIndexOf("/")), { recursive: true });
  const tmp = `${binary}.${crypto.randomUUID()}`;
  await sh(["gcc", "-static", "-O2", "-o", tmp, source]);
  Deno.renameSync(tmp, binary);
  return binary;
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** The host's non-loopback IPv4 addresses (another way in than 127.0.0.1). */
function hostAddresses(): string[] {
  return Deno.networkInterfaces()
    .filter((i) => i.family === "IPv4" && !i.address.startsWith("127."))
    .map((i) => i.address);
}

Deno.test(
  "bridge: a published web server and UDP echo, reached from the host's loopback, its other addresses, an outside namespace and other containers; port, ps, inspect, stats",
  opts,
  async () => {
    await using t = await TestEnv.create();
    await using outside = await Outside.create(t);
    const echo = await udpEcho();
    Deno.copyFileSync(echo, `${t.rootfs}/bin/udp_echo`);
    const port = freePort();
    const udpPort = freePort();
    await using web = await startRunning(t, [
      "--name",
      "web",
      "-p",
      `${port}:80`,
      "-p",
      "8080",
      "-p",
      `${udpPort}:9000/udp`,
      "/bin/sh",
      "-c",
      "udp_echo server 9000 & mkdir -p /www && echo hello-web >/www/index.html && httpd -p 80 -h /www && trap 'exit 0' TERM && echo ready && while :; do sleep 1; done",
    ]);
    await web.waitOutput(/ready/);

    // The host's loopback, the host's other addresses (the outside link's own side included).
    assert.equal(await get(`http://127.0.0.1:${port}/`), "hello-web\n");
    for (const address of [outside.hostIp, ...hostAddresses()]) {
      assert.equal(await get(`http://${address}:${port}/`), "hello-web\n", address);
    }
    // An outside client, through the host's address on its link.
    const fromOutside = await outside.exec([
      "busybox",
      "wget",
      "-qO-",
      `http://${outside.hostIp}:${port}/`,
    ]);
    assert.equal(fromOutside.out, "hello-web\n");
    // UDP, from the host and from outside.
    assert.equal(
      (await sh([echo, "client", "127.0.0.1", String(udpPort), "ping"])).out,
      "echo:ping\n",
    );
    assert.equal(
      (await outside.exec([echo, "client", outside.hostIp, String(udpPort), "out"])).out,
      "echo:out\n",
    );

    // port: each mapping; the free port that -p 8080 got.
    const ports = await t.run(["port", "web"]);
    assert.equal(ports.code, 0, ports.stderr);
    const lines = ports.stdout.trim().split("\n");
    assert.equal(lines.length, 3, ports.stdout);
    assert.ok(lines.includes(`80/tcp -> 0.0.0.0:${port}`), ports.stdout);
    assert.ok(lines.includes(`9000/udp -> 0.0.0.0:${udpPort}`), ports.stdout);
    const free = /^8080\/tcp -> 0\.0\.0\.0:(\d+)$/m.exec(ports.stdout);
    assert.ok(free !== null && Number(free[1]) > 1024, ports.stdout);
    assert.equal((await t.run(["port", "web", "80"])).stdout, `0.0.0.0:${port}\n`);
    const none = await t.run(["port", "web", "81/tcp"]);
    assert.equal(none.code, 125);
    assert.match(none.stderr, /^mini-docker: No public port "81\/tcp" published for web\n$/);
    // ps shows them.
    const ps = await t.run(["ps"]);
    assert.match(ps.stdout, new RegExp(`0\\.0\\.0\\.0:${port}->80/tcp`));
    assert.match(ps.stdout, new RegExp(`0\\.0\\.0\\.0:${udpPort}->9000/udp`));

    // inspect: Docker's NetworkSettings, on the default network.
    const inspected = JSON.parse((await t.run(["inspect", "web"])).stdout)[0];
    const settings = inspected.NetworkSettings;
    const ip: string = settings.IPAddress;
    assert.match(ip, new RegExp(`^10\\.${t.poolOctet}\\.0\\.\\d+$`));
    assert.equal(settings.Gateway, `10.${t.poolOctet}.0.1`);
    assert.equal(settings.IPPrefixLen, 24);
    assert.match(settings.MacAddress, /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
    assert.equal(settings.Networks.bridge.IPAddress, ip);
    assert.deepEqual(settings.Ports["80/tcp"], [{ HostIp: "0.0.0.0", HostPort: String(port) }]);
    assert.equal(inspected.HostConfig.NetworkMode, "bridge");
    assert.deepEqual(inspected.HostConfig.PortBindings["80/tcp"], [
      { HostIp: "", HostPort: String(port) },
    ]);

    // Another container: by the host's address (the published port) and by the container's.
    const client = await t.run([
      "run",
      "/bin/sh",
      "-c",
      `wget -qO- http://${outside.hostIp}:${port}/ && wget -qO- http://${ip}/ && udp_echo client ${outside.hostIp} ${udpPort} c2`,
    ]);
    assert.equal(client.stdout, "hello-web\nhello-web\necho:c2\n", client.stderr);
    // Inside: its address, the default route, /etc/hosts, a resolver it can reach.
    const inside = await t.run([
      "run",
      "--hostname",
      "probe",
      "/bin/sh",
      "-c",
      "ip -4 -o addr show eth0; ip route; cat /etc/hosts /etc/resolv.conf",
    ]);
    assert.equal(inside.code, 0, inside.stderr);
    const own = new RegExp(`inet (10\\.${t.poolOctet}\\.0\\.\\d+)/24`).exec(inside.stdout)?.[1];
    assert.ok(own !== undefined && own !== ip, inside.stdout);
    assert.match(
      inside.stdout,
      new RegExp(`^default via 10\\.${t.poolOctet}\\.0\\.1 dev eth0`, "m"),
    );
    assert.match(inside.stdout, new RegExp(`^${own.replaceAll(".", "\\.")}\\tprobe$`, "m"));
    assert.doesNotMatch(inside.stdout, /^nameserver 127\./m);
    assert.match(inside.stdout, /^nameserver /m);

    // stats: the traffic above went through eth0.
    const stats = JSON.parse(
      (await t.run(["stats", "--no-stream", "--format", "json", "web"])).stdout,
    );
    assert.ok(stats.NetRxBytes > 0 && stats.NetTxBytes > 0, JSON.stringify(stats));
    assert.equal((await t.run(["rm", "-f", "web"])).code, 0);
    await web.done();
    // Its port is free again: no rule forwards it any more.
    await assert.rejects(get(`http://127.0.0.1:${port}/`));
  },
);

Deno.test(
  "user-defined networks: names, aliases and host names resolve; --ip; isolation between networks; connect and disconnect; network ls, inspect, rm",
  opts,
  async () => {
    await using t = await TestEnv.create();
    const octet = t.poolOctet;
    const a = await t.run(["network", "create", "front"]);
    assert.equal(a.code, 0, a.stderr);
    assert.match(a.stdout, /^[0-9a-f]{64}\n$/);
    const b = await t.run([
      "network",
      "create",
      "--subnet",
      `10.${octet}.200.0/24`,
      "--gateway",
      `10.${octet}.200.254`,
      "back",
    ]);
    assert.equal(b.code, 0, b.stderr);
    const ls = await t.run(["network", "ls"]);
    assert.match(ls.stdout, /^NETWORK ID +NAME +DRIVER +SCOPE$/m);
    for (const name of ["front", "back", "bridge", "host", "none"]) {
      assert.match(ls.stdout, new RegExp(`^[0-9a-f]{12} +${name} +`, "m"), name);
    }

    await using srv = await startRunning(t, [
      "--name",
      "srv",
      "--network",
      "front",
      "--network-alias",
      "api",
      "--hostname",
      "srvhost",
      ...httpd("served-by-srv"),
    ]);
    await srv.waitOutput(/ready/);
    const srvIp: string = JSON.parse(
      (await t.run(["inspect", "-f", "{{json .NetworkSettings.Networks.front}}", "srv"])).stdout,
    ).IPAddress;
    assert.match(srvIp, new RegExp(`^10\\.${octet}\\.\\d+\\.2$`));
    // By name, by alias, by host name, on the same network.
    const same = await t.run([
      "run",
      "--network",
      "front",
      "/bin/sh",
      "-c",
      "wget -qO- http://srv/ && wget -qO- http://api/ && wget -qO- http://srvhost/ && cat /etc/resolv.conf",
    ]);
    assert.equal(same.code, 0, same.stderr);
    assert.match(same.stdout, /^(served-by-srv\n){3}/);
    assert.match(same.stdout, new RegExp(`^nameserver 10\\.${octet}\\.\\d+\\.1$`, "m"));
    // Another network: neither the names nor the address (isolated, as Docker's networks).
    const other = await t.run([
      "run",
      "--network",
      "back",
      "--ip",
      `10.${octet}.200.7`,
      "/bin/sh",
      "-c",
      `ip -4 -o addr show eth0; nslookup srv >/dev/null 2>&1 && echo resolved; timeout 3 wget -qO- http://${srvIp}/ || echo unreachable`,
    ]);
    assert.match(other.stdout, new RegExp(`inet 10\\.${octet}\\.200\\.7/24`));
    assert.doesNotMatch(other.stdout, /resolved/);
    assert.match(other.stdout, /unreachable/);
    assert.doesNotMatch(other.stdout, /served-by-srv/);

    // network inspect: the container, with its address.
    const info = JSON.parse((await t.run(["network", "inspect", "front"])).stdout)[0];
    assert.equal(info.Name, "front");
    assert.equal(info.Driver, "bridge");
    assert.match(info.IPAM.Config[0].Subnet, new RegExp(`^10\\.${octet}\\.\\d+\\.0/24$`));
    assert.deepEqual(Object.keys(info.Containers), [srv.id]);
    assert.equal(info.Containers[srv.id].IPv4Address, `${srvIp}/24`);
    const backInfo = JSON.parse((await t.run(["network", "inspect", "back"])).stdout)[0];
    assert.equal(backInfo.IPAM.Config[0].Gateway, `10.${octet}.200.254`);

    // connect: srv joins "back" too, where it is found by name; disconnect: it is gone again.
    const connect = await t.run(["network", "connect", "--alias", "api2", "back", "srv"]);
    assert.equal(connect.code, 0, connect.stderr);
    const viaBack = await t.run([
      "run",
      "--network",
      "back",
      "/usr/bin/wget",
      "-qO-",
      "http://api2/",
    ]);
    assert.equal(viaBack.stdout, "served-by-srv\n", viaBack.stderr);
    const twice = await t.run(["network", "connect", "back", "srv"]);
    assert.equal(twice.code, 125);
    assert.match(twice.stderr, /is already connected to network "back"/);
    const disconnect = await t.run(["network", "disconnect", "back", "srv"]);
    assert.equal(disconnect.code, 0, disconnect.stderr);
    const gone = await t.run([
      "run",
      "--network",
      "back",
      "/bin/sh",
      "-c",
      "nslookup api2 >/dev/null 2>&1 && echo resolved || echo unknown",
    ]);
    assert.equal(gone.stdout, "unknown\n", gone.stderr);

    // A network in use cannot be removed; once its container is gone, it can, bridge and all.
    const inUse = await t.run(["network", "rm", "front"]);
    assert.equal(inUse.code, 125);
    assert.match(
      inUse.stderr,
      /^mini-docker: Cannot remove network "front": it has active endpoints \(container "srv"\)/,
    );
    assert.equal(inUse.stderr.trim().split("\n").length, 1);
    assert.equal((await t.run(["rm", "-f", "srv"])).code, 0);
    await srv.done();
    const frontId = JSON.parse((await t.run(["network", "inspect", "front"])).stdout)[0].Id;
    assert.ok(Deno.statSync(`/sys/class/net/br-${frontId.slice(0, 12)}`));
    const rm = await t.run(["network", "rm", "front", "back"]);
    assert.equal(rm.code, 0, rm.stderr);
    assert.throws(() => Deno.statSync(`/sys/class/net/br-${frontId.slice(0, 12)}`));
    assert.doesNotMatch((await t.run(["network", "ls"])).stdout, /front|back/);
    // network prune removes the unused ones only.
    await t.run(["network", "create", "unused"]);
    const pruned = await t.run(["network", "prune", "-f"]);
    assert.equal(pruned.stdout, "Deleted Networks:\nunused\n", pruned.stderr);
  },
);

Deno.test("concurrent runs on one network get distinct addresses", opts, async () => {
  await using t = await TestEnv.create();
  assert.equal((await t.run(["network", "create", "crowd"])).code, 0);
  const count = SLOWDOWN > 1 ? 6 : 20;
  const started = await Promise.all(
    Array.from(
      { length: count },
      () => t.run(["run", "-d", "--network", "crowd", "/bin/sh", "-c", "sleep 600"]),
    ),
  );
  for (const s of started) assert.equal(s.code, 0, s.stderr);
  const ids = started.map((s) => s.stdout.trim());
  const addresses = await Promise.all(
    ids.map(async (id) =>
      (await t.run(["inspect", "-f", "{{.NetworkSettings.Networks.crowd.IPAddress}}", id])).stdout
        .trim()
    ),
  );
  assert.equal(new Set(addresses).size, count, addresses.join(" "));
  for (const a of addresses) assert.match(a, new RegExp(`^10\\.${t.poolOctet}\\.\\d+\\.\\d+$`));
  assert.equal((await t.run(["rm", "-f", ...ids])).code, 0);
});

Deno.test("-P publishes the image's exposed ports; --dns and --add-host", opts, async () => {
  await using registry = await TestRegistry.start();
  await using t = await TestEnv.create();
  await registry.pushImage("web", "v1", {
    layers: [{ tar: makeTar(busyboxRootfs()), gzip: true }],
    config: {
      Env: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],
      // Its busybox has few applet links: the others by name.
      Cmd: [
        "/bin/sh",
        "-c",
        "busybox mkdir -p /www && echo from-image >/www/index.html && exec busybox httpd -f -p 80 -h /www",
      ],
      ExposedPorts: { "80/tcp": {} },
    },
  });
  const ref = `${registry.host}/web:v1`;
  assert.equal((await t.run(["pull", ref])).code, 0);
  const id = (await t.run(["run", "-d", "-P", "--image", ref])).stdout.trim();
  assert.match(id, /^[0-9a-f]{64}$/);
  const mapping = /^80\/tcp -> 0\.0\.0\.0:(\d+)$/.exec((await t.run(["port", id])).stdout.trim());
  assert.ok(mapping !== null);
  let body = "";
  for (let i = 0; i < 50 && body === ""; i++) {
    body = await get(`http://127.0.0.1:${mapping[1]}/`).catch(() => "");
    if (body === "") await new Promise((r) => setTimeout(r, 100 * SLOWDOWN));
  }
  assert.equal(body, "from-image\n");
  const inspected = JSON.parse((await t.run(["inspect", id])).stdout)[0];
  assert.deepEqual(inspected.Config.ExposedPorts, { "80/tcp": {} });
  assert.equal(inspected.HostConfig.PublishAllPorts, true);
  assert.equal((await t.run(["rm", "-f", id])).code, 0);

  const files = await t.run([
    "run",
    "--dns",
    "10.9.9.9",
    "--add-host",
    "db:10.1.2.3",
    "--add-host",
    "gw:host-gateway",
    "/bin/sh",
    "-c",
    "cat /etc/resolv.conf /etc/hosts",
  ]);
  assert.equal(files.code, 0, files.stderr);
  assert.match(files.stdout, /^nameserver 10\.9\.9\.9$/m);
  assert.doesNotMatch(files.stdout, /^nameserver (?!10\.9\.9\.9)/m);
  assert.match(files.stdout, /^10\.1\.2\.3\tdb$/m);
  assert.match(files.stdout, new RegExp(`^10\\.${t.poolOctet}\\.0\\.1\\tgw$`, "m"));
});

Deno.test("bad network input: one line, 125, nothing left behind", opts, async () => {
  await using t = await TestEnv.create();
  const busy = Deno.listen({ hostname: "0.0.0.0", port: 0 });
  const busyPort = (busy.addr as Deno.NetAddr).port;
  try {
    assert.equal(
      (await t.run(["network", "create", "--subnet", `10.${t.poolOctet}.10.0/24`, "n1"])).code,
      0,
    );
    const cases: [string[], RegExp][] = [
      [["run", "-p", "abc", "/bin/true"], /^Invalid --publish "abc": the container port "abc"/],
      [["run", "-p", "70000:80", "/bin/true"], /^Invalid --publish "70000:80": the host port/],
      [
        ["run", "-p", "80/sctp", "/bin/true"],
        /^Invalid --publish "80\/sctp": unsupported protocol "sctp"/,
      ],
      [["run", "-p", "1-3:80-81", "/bin/true"], /same size/],
      [["run", "-p", "[::1]:80:80", "/bin/true"], /IPv6 host addresses are not supported/],
      [["run", "--network", "nosuch", "/bin/true"], /^No such network: nosuch$/],
      [
        ["run", "--network", "host", "-p", "80", "/bin/true"],
        /^Cannot publish ports with --network host/,
      ],
      [
        ["run", "--ip", "10.1.1.1", "/bin/true"],
        /^--ip is supported on user-defined networks only/,
      ],
      [
        ["run", "--network", "n1", "--ip", "10.1.1.1", "/bin/true"],
        /^Invalid --ip "10.1.1.1": it is not in network "n1"/,
      ],
      [
        ["run", "--network-alias", "x", "--network", "none", "/bin/true"],
        /^--network-alias needs a user-defined network/,
      ],
      [["run", "--dns", "bogus", "/bin/true"], /^Invalid --dns "bogus"/],
      [["run", "--add-host", "nocolon", "/bin/true"], /^Invalid --add-host "nocolon"/],
      [
        ["run", "-p", `${busyPort}:80`, "/bin/true"],
        new RegExp(`^Cannot publish 0\\.0\\.0\\.0:${busyPort}/tcp: Address already in use$`),
      ],
      [
        ["network", "create", "--subnet", `10.${t.poolOctet}.10.128/25`, "n2"],
        /^Invalid subnet .*: it overlaps network "n1"/,
      ],
      [
        ["network", "create", "--subnet", "10.1.2.3/16", "n3"],
        /^Invalid subnet "10.1.2.3\/16": host bits are set: the network of this prefix is 10.1.0.0\/16$/,
      ],
      [["network", "create", "--gateway", "10.0.0.1", "n4"], /--gateway needs --subnet/],
      [[
        "network",
        "create",
        "--subnet",
        `10.${t.poolOctet}.11.0/24`,
        "--gateway",
        `10.${t.poolOctet}.12.1`,
        "n5",
      ], /^Invalid gateway/],
      [["network", "create", "n1"], /^Network "n1" already exists/],
      [["network", "create", "host"], /pre-defined network/],
      [["network", "rm", "none"], /pre-defined network/],
      [["network", "rm", "nosuch"], /^No such network: nosuch$/],
      [["network", "connect", "n1", "nosuch"], /^No such container: nosuch$/],
    ];
    for (const [args, message] of cases) {
      const r = await t.run(args);
      // Docker's code for an unknown container (its daemon's refusal) is 1.
      const code = /No such container/.test(message.source) ? 1 : 125;
      assert.equal(r.code, code, `${args.join(" ")}: ${r.stderr}`);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
      assert.match(r.stderr.replace(/^mini-docker: /, "").trim(), message, args.join(" "));
      t.assertNothingLeft();
    }
    // A host port another container publishes: the second run fails, the first goes on.
    const port = freePort();
    const first = (await t.run(["run", "-d", "-p", `${port}:80`, ...httpd("first")])).stdout.trim();
    const second = await t.run(["run", "-p", `${port}:80`, "/bin/true"]);
    assert.equal(second.code, 125);
    assert.match(
      second.stderr,
      new RegExp(`^mini-docker: Cannot publish 0\\.0\\.0\\.0:${port}/tcp: `),
    );
    assert.equal(second.stderr.trim().split("\n").length, 1);
    // The network of a running container cannot be removed.
    const inUse = await t.run(["network", "rm", "bridge"]);
    assert.equal(inUse.code, 125);
    assert.match(inUse.stderr, /active endpoints/);
    assert.equal((await t.run(["rm", "-f", first])).code, 0);
    t.assertNothingLeft();
  } finally {
    busy.close();
  }
});

Deno.test(
  "a SIGKILLed mini-docker or supervisor leaves nothing after the next ps/prune",
  opts,
  async () => {
    await using t = await TestEnv.create();
    assert.equal((await t.run(["network", "create", "k"])).code, 0);
    // First the plain way: a detached --rm container that ends leaves nothing either.
    const rm = await t.run([
      "run",
      "-d",
      "--rm",
      "--network",
      "k",
      "-p",
      "80",
      "/bin/sh",
      "-c",
      "sleep 0.2",
    ]);
    assert.equal(rm.code, 0, rm.stderr);
    await waitFor(() => t.containerIds().length === 0, 10_000 * SLOWDOWN, "the --rm container");
    t.assertNothingLeft();
    const port = freePort();
    // A foreground run, killed: the watcher kills the container; its network stays until ps.
    const fg = await startRunning(t, ["--network", "k", "-p", `${port}:80`, ...httpd("fg")]);
    await fg.waitOutput(/ready/);
    assert.equal(await get(`http://127.0.0.1:${port}/`), "fg\n");
    const pid1 = JSON.parse(
      Deno.readTextFileSync(`${t.dir}/lib/containers/${fg.id}/state.json`),
    ).process.pid;
    fg.signal("SIGKILL");
    await fg.done();
    // Its watcher kills the container.
    await waitFor(() => !exists(`/proc/${pid1}`), 10_000 * SLOWDOWN, "the container to die");
    assert.equal(t.containerIds().length, 1);
    assert.notDeepEqual(t.networkLeftovers(false), [], "the killed run's network is still there");
    assert.equal((await t.run(["ps", "-a"])).code, 0);
    await waitFor(() => t.containerIds().length === 0, 10_000 * SLOWDOWN, "ps to clean up");
    t.assertNothingLeft();

    // A killed supervisor: its container keeps running, reachable; rm -f cleans it all.
    const port2 = freePort();
    const id =
      (await t.run(["run", "-d", "--network", "k", "-p", `${port2}:80`, ...httpd("detached")]))
        .stdout.trim();
    const supervisor = Number(
      Deno.readTextFileSync(
        `${t.dir}/run/supervisor/${
          [...Deno.readDirSync(`${t.dir}/run/supervisor`)].find((e) => e.name.endsWith(".pid"))!
            .name
        }`,
      ),
    );
    let body = "";
    for (let i = 0; i < 50 && body === ""; i++) {
      body = await get(`http://127.0.0.1:${port2}/`).catch(() => "");
      if (body === "") await new Promise((r) => setTimeout(r, 100 * SLOWDOWN));
    }
    assert.equal(body, "detached\n");
    Deno.kill(supervisor, "SIGKILL");
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(await get(`http://127.0.0.1:${port2}/`), "detached\n");
    assert.equal((await t.run(["rm", "-f", id])).code, 0);
    t.assertNothingLeft();

    // A killed supervisor whose container then ends by itself: ps releases the network, prune
    // removes the container.
    const short = (await t.run(["run", "-d", "--network", "k", "/bin/sh", "-c", "sleep 1"])).stdout
      .trim();
    for (const e of Deno.readDirSync(`${t.dir}/run/supervisor`)) {
      if (e.name.endsWith(".pid")) {
        Deno.kill(Number(Deno.readTextFileSync(`${t.dir}/run/supervisor/${e.name}`)), "SIGKILL");
      }
    }
    await new Promise((r) => setTimeout(r, 2_000 * SLOWDOWN));
    const ps = await t.run(["ps", "-a"]);
    assert.match(ps.stdout, new RegExp(`${short.slice(0, 12)}.*Exited`));
    assert.deepEqual(t.networkLeftovers(false), []);
    assert.equal((await t.run(["prune", "-f"])).code, 0);
    t.assertNothingLeft();
  },
);
