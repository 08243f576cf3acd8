/**
 * The netavark driver. netavark (Podman's network stack, Debian's `netavark`) configures a
 * network namespace from a JSON document on its stdin:
 *
 *   netavark --config DIR --aardvark-binary PATH setup|teardown NETNS_PATH  < options.json
 *
 * `setup` creates the bridge when missing (with the gateway address), a veth pair into the
 * namespace with the given address and default route, the NAT and filter rules (iptables:
 * masquerade, forwarding, DNAT of published ports also from the host itself), and, on a network
 * with DNS, the container's names in aardvark-dns's files under DIR/aardvark-dns, starting or
 * signalling the aardvark-dns server that answers on the gateway. It prints a status per network
 * (the interface's MAC). `teardown` takes the same document and undoes it all; with the bridge's
 * last container it removes the bridge and the network's rules too, and aardvark-dns leaves with
 * the last name. It allocates no address: that is ours (endpoints.ts).
 *
 * Callers serialize its calls host-wide (mod.ts): netavark 1.4 checks, then adds, its iptables
 * chains and bridge, and two runs at once could both try to create them.
 */
import { UserError } from "../base/errors.ts";
import {
  type DriverRequest,
  type NetworkDriver,
  type ProgramResult,
  runProgram,
} from "./driver.ts";
import { networkRunDir } from "./store.ts";

const NETAVARK_PATHS = [
  "/usr/libexec/podman/netavark",
  "/usr/lib/podman/netavark",
  "/usr/local/libexec/podman/netavark",
  "/usr/local/lib/podman/netavark",
];
const AARDVARK_PATHS = NETAVARK_PATHS.map((p) => p.replace(/netavark$/, "aardvark-dns"));
const IPTABLES_PATHS = ["/usr/sbin/iptables", "/sbin/iptables", "/usr/local/sbin/iptables"];

const INSTALL = 'install it with "apt-get install netavark aardvark-dns iptables"';

function firstFile(paths: readonly (string | undefined)[]): string | undefined {
  for (const p of paths) {
    if (p === undefined || p === "") continue;
    try {
      if (Deno.statSync(p).isFile) return p;
    } catch { /* not here */ }
  }
  return undefined;
}

/** netavark, driven by its command line. */
export class Netavark implements NetworkDriver {
  readonly name = "netavark";
  readonly #binary: string;

  /** Where netavark is. */
  get path(): string {
    return this.#binary;
  }
  readonly #aardvark: string;

  private constructor(binary: string, aardvark: string) {
    this.#binary = binary;
    this.#aardvark = aardvark;
  }

  /**
   * Finds netavark ($MINI_DOCKER_NETAVARK, else Podman's places), aardvark-dns next to it and
   * iptables, which it runs; a UserError saying what to install when one is missing.
   */
  static detect(): Netavark {
    const binary = firstFile([Deno.env.get("MINI_DOCKER_NETAVARK"), ...NETAVARK_PATHS]);
    if (binary === undefined) {
      throw new UserError(
        `A container network needs netavark (Podman's network stack), which is not installed: ${INSTALL}, or run with --network host or --network none`,
      );
    }
    const aardvark = firstFile([
      binary.replace(/netavark$/, "aardvark-dns"),
      ...AARDVARK_PATHS,
    ]);
    if (aardvark === undefined) {
      throw new UserError(
        `A container network needs aardvark-dns (netavark's DNS server), which is not installed: ${INSTALL}`,
      );
    }
    if (firstFile(IPTABLES_PATHS) === undefined) {
      throw new UserError(
        `A container network needs iptables (netavark's firewall driver), which is not installed: ${INSTALL}`,
      );
    }
    return new Netavark(binary, aardvark);
  }

  async setup(netns: string, request: DriverRequest): Promise<{ mac: string }> {
    const out = await this.#run("setup", netns, request);
    if (out.code !== 0) {
      throw new UserError(
        `Cannot connect the container to network "${request.endpoint.network.name}": netavark: ${
          problem(out)
        }`,
      );
    }
    let mac = "";
    try {
      const status = JSON.parse(out.stdout);
      mac = status[request.endpoint.network.id]?.interfaces?.[request.endpoint.interface]
        ?.mac_address ?? "";
    } catch { /* no status: the MAC stays unknown */ }
    return { mac };
  }

  async teardown(netns: string, request: DriverRequest): Promise<string | undefined> {
    const out = await this.#run("teardown", netns, request);
    if (out.code === 0) return undefined;
    // netavark goes on after each error and lists them all. What was already gone is no problem:
    // the container's interface (its namespace died), aardvark-dns (it left with its last
    // name), a DNS entry removed before, a chain that someone flushed.
    const gone =
      /No such device|aardvark pid not found|No such file or directory|No chain\/target\/match|encountered multiple errors/;
    const left = problem(out).split(/\n\t- /).filter((line) => !gone.test(line));
    return left.length === 0 ? undefined : left.join("; ");
  }

  /**
   * netavark has no command for it: its DNS entries are lines of `DIR/aardvark-dns/<network>`,
   * "<container id> <IPv4s> <IPv6s> <names>", which it writes under `DIR/aardvark.lock` and
   * then signals aardvark-dns (SIGHUP) to read again. The same here, for the container's line.
   */
  async rename(request: DriverRequest): Promise<void> {
    const config = `${networkRunDir()}/netavark`;
    const file = `${config}/aardvark-dns/${request.endpoint.network.id}`;
    using lock = await Deno.open(`${config}/aardvark.lock`, { create: true, write: true });
    await lock.lock(true);
    const names = [request.containerName, ...request.endpoint.aliases].join(",");
    let text: string;
    try {
      text = Deno.readTextFileSync(file);
    } catch (err) {
      throw new UserError(
        `Cannot rename in the DNS of network "${request.endpoint.network.name}": ${
          (err as Error).message
        }`,
      );
    }
    const lines = text.split("\n").map((line) => {
      const fields = line.split(" ");
      if (fields[0] !== request.containerId || fields.length < 4) return line;
      fields[3] = names;
      return fields.join(" ");
    });
    const tmp = `${file}.${crypto.randomUUID()}`;
    Deno.writeTextFileSync(tmp, lines.join("\n"));
    Deno.renameSync(tmp, file);
    try {
      const pid = Number(Deno.readTextFileSync(`${config}/aardvark-dns/aardvark.pid`).trim());
      Deno.kill(pid, "SIGHUP");
    } catch (err) {
      throw new UserError(`Cannot tell aardvark-dns about the new name: ${(err as Error).message}`);
    }
  }

  /** Runs netavark with the request as its input. */
  async #run(
    command: "setup" | "teardown",
    netns: string,
    request: DriverRequest,
  ): Promise<ProgramResult> {
    const config = `${networkRunDir()}/netavark`;
    Deno.mkdirSync(config, { recursive: true, mode: 0o700 });
    return await runProgram(
      this.#binary,
      ["--config", config, "--aardvark-binary", this.#aardvark, command, netns],
      {
        // netavark runs iptables (and aardvark-dns) by name.
        env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        stdin: JSON.stringify(options(request)),
      },
    );
  }
}

/** netavark's error: its JSON `{"error": ...}` on stdout, else its stderr. */
function problem(out: { stdout: string; stderr: string }): string {
  try {
    const error = JSON.parse(out.stdout.trim().split("\n").pop() ?? "").error;
    if (typeof error === "string") return error;
  } catch { /* not JSON */ }
  const lines = out.stderr.split("\n").filter((l) => l.trim() !== "" && !/syslog/.test(l));
  return lines.pop() ?? "failed";
}

/**
 * netavark's network options (its `NetworkOptions`): one network, the address we allocated as
 * a static IP with the host-local IPAM driver (which makes netavark use it as given). The
 * network is named by its id for netavark: its chains (NETAVARK-<hash of the name>) and DNS
 * files are named after it, and two networks of the same name in two mini-docker worlds (a
 * user's and a test's) must not share them.
 */
export function options(r: DriverRequest): Record<string, unknown> {
  const net = r.endpoint.network;
  return {
    container_id: r.containerId,
    container_name: r.containerName,
    port_mappings: r.ports.map((p) => ({
      host_ip: p.hostIp,
      container_port: p.containerPort,
      host_port: p.hostPort,
      range: 1,
      protocol: p.protocol,
    })),
    networks: {
      [net.id]: {
        static_ips: [r.endpoint.ip],
        aliases: r.endpoint.aliases,
        interface_name: r.endpoint.interface,
      },
    },
    network_info: {
      [net.id]: {
        name: net.id,
        id: net.id,
        driver: "bridge",
        network_interface: net.bridge,
        created: net.created,
        subnets: [{ subnet: net.subnet, gateway: net.gateway }],
        ipv6_enabled: false,
        internal: false,
        dns_enabled: net.dns,
        ipam_options: { driver: "host-local" },
        // Isolated from the other networks, as Docker's: no forwarding between bridges.
        options: { isolate: "true" },
      },
    },
    ...(r.dns.length > 0 && { dns_servers: r.dns }),
  };
}
