import assert from "node:assert/strict";
import {
  formatIPv4,
  formatSubnet,
  hostRoutes,
  isHostAddress,
  overlaps,
  parseIPv4,
  parseSubnet,
  type Subnet,
} from "./ip.ts";

Deno.test("parseIPv4 and formatIPv4: dotted quads only", () => {
  assert.equal(parseIPv4("10.1.2.3"), 0x0a010203);
  assert.equal(formatIPv4(0xac110001), "172.17.0.1");
  for (const bad of ["10.1.2", "10.1.2.256", "01.1.1.1", "a.b.c.d", "", "::1", "1.2.3.4.5"]) {
    assert.equal(parseIPv4(bad), undefined, bad);
  }
});

Deno.test("parseSubnet: CIDR with host bits clear, prefix 8 to 29; the problem in words", () => {
  assert.deepEqual(parseSubnet("10.1.0.0/16"), { address: 0x0a010000, prefix: 16 });
  assert.equal(formatSubnet(parseSubnet("192.168.16.0/20") as Subnet), "192.168.16.0/20");
  assert.match(parseSubnet("10.1.2.3/16") as string, /network of this prefix is 10\.1\.0\.0\/16/);
  assert.match(parseSubnet("10.1.0.0/30") as string, /8 to 29/);
  assert.match(parseSubnet("10.1.0.0") as string, /CIDR/);
  assert.match(parseSubnet("fd00::/64") as string, /IPv6 is not supported/);
});

Deno.test("overlaps and isHostAddress", () => {
  const a = parseSubnet("10.1.0.0/16") as Subnet;
  assert.ok(overlaps(a, parseSubnet("10.1.200.0/24") as Subnet));
  assert.ok(overlaps(parseSubnet("10.0.0.0/8") as Subnet, a));
  assert.ok(!overlaps(a, parseSubnet("10.2.0.0/16") as Subnet));
  assert.ok(isHostAddress(a, parseIPv4("10.1.0.1")!));
  assert.ok(!isHostAddress(a, parseIPv4("10.1.0.0")!));
  assert.ok(!isHostAddress(a, parseIPv4("10.1.255.255")!));
  assert.ok(!isHostAddress(a, parseIPv4("10.2.0.1")!));
});

Deno.test("hostRoutes reads /proc/net/route, the default route left out", () => {
  const table = [
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT",
    "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0",
    "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0",
    "br0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0",
  ].join("\n");
  assert.deepEqual(hostRoutes(table).map(formatSubnet), ["192.0.2.0/24", "172.17.0.0/16"]);
});
