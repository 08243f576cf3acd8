import assert from "node:assert/strict";
import { options } from "./netavark.ts";

Deno.test("netavark's options: one network named by its id, our address as a static IP", () => {
  const network = {
    id: "f".repeat(64),
    name: "app",
    driver: "bridge" as const,
    created: "2026-01-01T00:00:00Z",
    subnet: "10.5.0.0/24",
    gateway: "10.5.0.1",
    bridge: "br-ffffffffffff",
    dns: true,
  };
  const o = options({
    containerId: "c".repeat(64),
    containerName: "web",
    endpoint: {
      network,
      interface: "eth0",
      ip: "10.5.0.2",
      aliases: ["api"],
      state: "allocated",
      ports: true,
    },
    ports: [{ hostIp: "", hostPort: 8080, containerPort: 80, protocol: "tcp" }],
    dns: ["9.9.9.9"],
  });
  assert.deepEqual(o, {
    container_id: "c".repeat(64),
    container_name: "web",
    port_mappings: [{
      host_ip: "",
      container_port: 80,
      host_port: 8080,
      range: 1,
      protocol: "tcp",
    }],
    networks: {
      [network.id]: { static_ips: ["10.5.0.2"], aliases: ["api"], interface_name: "eth0" },
    },
    network_info: {
      [network.id]: {
        name: network.id,
        id: network.id,
        driver: "bridge",
        network_interface: "br-ffffffffffff",
        created: "2026-01-01T00:00:00Z",
        subnets: [{ subnet: "10.5.0.0/24", gateway: "10.5.0.1" }],
        ipv6_enabled: false,
        internal: false,
        dns_enabled: true,
        ipam_options: { driver: "host-local" },
        options: { isolate: "true" },
      },
    },
    dns_servers: ["9.9.9.9"],
  });
});
