import assert from "node:assert/strict";
import { formatPort, parseAddHost, parseDns, parseExpose, parsePublish } from "./publish.ts";

Deno.test("parsePublish: Docker's spellings", () => {
  const m = (hostIp: string, hostPort: number, containerPort: number, protocol = "tcp") => ({
    hostIp,
    hostPort,
    containerPort,
    protocol,
  });
  assert.deepEqual(parsePublish("8080:80"), [m("", 8080, 80)]);
  assert.deepEqual(parsePublish("80"), [m("", 0, 80)]);
  assert.deepEqual(parsePublish("53:53/udp"), [m("", 53, 53, "udp")]);
  assert.deepEqual(parsePublish("127.0.0.1:8080:80/tcp"), [m("127.0.0.1", 8080, 80)]);
  assert.deepEqual(parsePublish("127.0.0.1::80"), [m("127.0.0.1", 0, 80)]);
  assert.deepEqual(parsePublish("8000-8001:80-81"), [m("", 8000, 80), m("", 8001, 81)]);
  assert.deepEqual(parsePublish("90-91"), [m("", 0, 90), m("", 0, 91)]);
});

Deno.test("parsePublish: malformed specs name the part that is wrong", () => {
  const cases: [string, RegExp][] = [
    ["", /container port ""/],
    ["abc", /container port "abc"/],
    ["0", /container port "0"/],
    ["8080:65536", /container port "65536"/],
    ["x:80", /host port "x"/],
    ["1.2.3:80:80", /host address "1.2.3"/],
    ["1:2:3:4", /expected/],
    ["80/sctp", /unsupported protocol "sctp"/],
    ["8000-8002:80-81", /same size/],
    ["[::1]:80:80", /IPv6/],
    ["90-80", /container port "90-80"/],
  ];
  for (const [spec, message] of cases) {
    assert.throws(() => parsePublish(spec), (err: Error) => {
      assert.match(
        err.message,
        new RegExp(`^Invalid --publish "${spec.replace(/[[\]]/g, "\\$&")}": `),
      );
      assert.match(err.message, message);
      return true;
    }, spec);
  }
});

Deno.test("parseExpose, parseAddHost, parseDns, formatPort", () => {
  assert.deepEqual(parseExpose("80"), ["80/tcp"]);
  assert.deepEqual(parseExpose("53/udp"), ["53/udp"]);
  assert.deepEqual(parseExpose("8000-8002"), ["8000/tcp", "8001/tcp", "8002/tcp"]);
  assert.throws(() => parseExpose("http"), /Invalid --expose "http"/);
  assert.equal(parseAddHost("db:10.0.0.5"), "db:10.0.0.5");
  assert.equal(parseAddHost("gw:host-gateway"), "gw:host-gateway");
  assert.equal(parseAddHost("v6:fd00::1"), "v6:fd00::1");
  assert.throws(() => parseAddHost("db"), /expected NAME:IP/);
  assert.throws(() => parseAddHost("db:nowhere"), /"nowhere" is not an IP address/);
  assert.equal(parseDns("9.9.9.9"), "9.9.9.9");
  assert.throws(() => parseDns("dns.example"), /Invalid --dns "dns.example"/);
  assert.equal(
    formatPort({ hostIp: "", hostPort: 8080, containerPort: 80, protocol: "tcp" }),
    "0.0.0.0:8080->80/tcp",
  );
});
