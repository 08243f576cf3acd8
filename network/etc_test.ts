import assert from "node:assert/strict";
import type { ContainerNetwork } from "../base/spec.ts";
import { hostsFile, resolvConf } from "./etc.ts";

const network = (o: Partial<ContainerNetwork> = {}): ContainerNetwork => ({
  mode: "bridge",
  aliases: [],
  ports: [],
  publishAll: false,
  exposedPorts: [],
  dns: [],
  extraHosts: [],
  ...o,
});
const host = "search example.org\nnameserver 127.0.0.53\nnameserver 9.9.9.9\noptions ndots:2\n";

Deno.test("hostsFile: the container's address under its host name, --add-host lines", () => {
  const net = { ip: "10.5.0.2", gateway: "10.5.0.1", dns: false };
  const text = hostsFile("web", network({ extraHosts: ["db:10.9.0.1", "gw:host-gateway"] }), net);
  assert.match(text, /^127\.0\.0\.1\tlocalhost$/m);
  assert.match(text, /^10\.9\.0\.1\tdb$/m);
  assert.match(text, /^10\.5\.0\.1\tgw$/m);
  assert.match(text, /^10\.5\.0\.2\tweb\n$/m);
  // No network of its own: the host name on 127.0.1.1, host-gateway is the host itself.
  const own = hostsFile("h", network({ mode: "host", extraHosts: ["gw:host-gateway"] }));
  assert.match(own, /^127\.0\.0\.1\tgw$/m);
  assert.match(own, /^127\.0\.1\.1\th$/m);
});

Deno.test("resolvConf: the network's DNS, --dns, or the host's servers that a container can reach", () => {
  const bridge = { ip: "10.5.0.2", gateway: "10.5.0.1", dns: false };
  assert.equal(
    resolvConf(host, network(), bridge),
    "search example.org\noptions ndots:2\nnameserver 9.9.9.9\n",
  );
  assert.equal(
    resolvConf("nameserver 127.0.0.1\n", network(), bridge),
    "nameserver 8.8.8.8\nnameserver 8.8.4.4\n",
  );
  assert.match(
    resolvConf(host, network({ dns: ["1.1.1.1"] }), bridge),
    /^nameserver 1\.1\.1\.1\n$/m,
  );
  // A network with its own DNS: the gateway, which forwards to --dns or the host's.
  const user = { ...bridge, dns: true };
  assert.equal(
    resolvConf(host, network({ dns: ["1.1.1.1"] }), user),
    "search example.org\noptions ndots:2\nnameserver 10.5.0.1\n",
  );
  // The host's network: the host's file as it is (unless --dns).
  assert.equal(resolvConf(host, network({ mode: "host" })), host);
  assert.equal(resolvConf(host, network({ mode: "none", dns: ["1.1.1.1"] })).split("\n").pop(), "");
});
