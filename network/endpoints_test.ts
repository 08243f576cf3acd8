import assert from "node:assert/strict";
import { allocateAddress, type EndpointRecord, portHolder, usersOf } from "./endpoints.ts";
import type { NetworkDef } from "./store.ts";

const net: NetworkDef = {
  id: "a".repeat(64),
  name: "app",
  driver: "bridge",
  created: "2026-01-01T00:00:00Z",
  subnet: "10.5.0.0/29",
  gateway: "10.5.0.1",
  bridge: "br-aaaaaaaaaaaa",
  dns: true,
};

function record(name: string, ip: string, extra: Partial<EndpointRecord> = {}): EndpointRecord {
  return {
    containerId: name.padEnd(64, "0"),
    containerName: name,
    endpoints: [{ network: net, interface: "eth0", ip, aliases: [], state: "up", ports: true }],
    ports: [],
    dns: [],
    ...extra,
  };
}

Deno.test("allocateAddress: the first free one after the gateway; the last for a keeper; none left", () => {
  assert.equal(allocateAddress(net, undefined, []), "10.5.0.2");
  const taken = [record("a", "10.5.0.2"), record("b", "10.5.0.4")];
  assert.equal(allocateAddress(net, undefined, taken), "10.5.0.3");
  assert.equal(allocateAddress(net, undefined, taken, true), "10.5.0.6");
  const full = ["2", "3", "4", "5", "6"].map((n) => record(n, `10.5.0.${n}`));
  assert.throws(
    () => allocateAddress(net, undefined, full),
    /No free address left on network "app"/,
  );
});

Deno.test("allocateAddress: --ip when free and in the subnet", () => {
  const taken = [record("web", "10.5.0.3")];
  assert.equal(allocateAddress(net, "10.5.0.5", taken), "10.5.0.5");
  assert.throws(
    () => allocateAddress(net, "10.5.0.3", taken),
    /already in use .* by container "web"/,
  );
  assert.throws(() => allocateAddress(net, "10.5.0.1", taken), /other than its gateway/);
  assert.throws(() => allocateAddress(net, "10.5.0.7", taken), /Invalid --ip "10.5.0.7"/);
  assert.throws(() => allocateAddress(net, "10.6.0.2", taken), /Invalid --ip/);
});

Deno.test("portHolder: same protocol and port, overlapping host addresses", () => {
  const holder = record("web", "10.5.0.2", {
    ports: [{ hostIp: "", hostPort: 8080, containerPort: 80, protocol: "tcp" }],
  });
  const ask = (hostIp: string, hostPort: number, protocol: "tcp" | "udp") =>
    portHolder({ hostIp, hostPort, containerPort: 1, protocol }, [holder]);
  assert.equal(ask("", 8080, "tcp"), "web");
  assert.equal(ask("127.0.0.1", 8080, "tcp"), "web");
  assert.equal(ask("", 8080, "udp"), undefined);
  assert.equal(ask("", 8081, "tcp"), undefined);
});

Deno.test("usersOf leaves keepers out", () => {
  const keeper = record("keeper-x", "10.5.0.6", { keeper: true });
  assert.deepEqual(usersOf(net, [record("web", "10.5.0.2"), keeper]), ["web"]);
});
