import assert from "node:assert/strict";
import { subnetPools } from "./store.ts";
import { formatSubnet } from "./ip.ts";

Deno.test("subnetPools: dockerd's --default-address-pool spelling, Docker's defaults otherwise", () => {
  const [pool] = subnetPools("base=10.10.0.0/16,size=24");
  assert.equal(formatSubnet(pool!.base), "10.10.0.0/16");
  assert.equal(pool!.size, 24);
  const defaults = subnetPools("");
  assert.equal(formatSubnet(defaults[0]!.base), "172.17.0.0/16");
  assert.equal(defaults.at(-1)!.size, 20);
  for (const bad of ["10.10.0.0/16", "base=10.10.0.0/16,size=8", "base=x,size=24"]) {
    assert.throws(() => subnetPools(bad), /Invalid MINI_DOCKER_SUBNET_POOL/, bad);
  }
});
