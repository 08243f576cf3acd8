/**
 * Networks on disk: one JSON file per network under `<data root>/networks/`, as Docker keeps
 * its network store: the default network `bridge` (created on first use) and the user-defined
 * ones (`network create`). `host` and `none` are modes, not stored networks, but are listed
 * like Docker's pre-defined networks.
 *
 * Every change, and every address given to a container (endpoints.ts), happens under one lock
 * file in the run root, so concurrent runs and commands never take the same name, subnet or
 * address.
 */
import { dataRoot, runRoot } from "../base/paths.ts";
import { UserError } from "../base/errors.ts";
import {
  contains,
  formatIPv4,
  formatSubnet,
  hostRoutes,
  isHostAddress,
  overlaps,
  parseIPv4,
  parseSubnet,
  type Subnet,
} from "./ip.ts";

/** A network: the subnet its containers get addresses from, and the host's bridge. */
export interface NetworkDef {
  /** 64 hex digits, as Docker's network ids. */
  id: string;
  name: string;
  driver: "bridge";
  /** ISO 8601. */
  created: string;
  /** IPv4 CIDR, e.g. "172.17.0.0/16". */
  subnet: string;
  /** The bridge's address on the host: the containers' default route. */
  gateway: string;
  /** The host's bridge interface ("mini-docker0", "br-<id prefix>"). */
  bridge: string;
  /** Whether containers resolve each other by name (aardvark-dns): user-defined networks. */
  dns: boolean;
}

/** The default network's name, as Docker's. */
export const DEFAULT_NETWORK = "bridge";
/** Network modes that are not stored networks. */
export const PREDEFINED = ["bridge", "host", "none"];

const NAME_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** The directory of the network definitions. */
export function networksDir(): string {
  return `${dataRoot()}/networks`;
}

/** The run root's directory for networks: the lock, endpoints, kept namespaces, DNS config. */
export function networkRunDir(): string {
  return `${runRoot()}/networks`;
}

/** Runs `fn` holding the network lock (network changes and address allocation). */
export function withNetworkLock<T>(fn: () => T): T {
  Deno.mkdirSync(networkRunDir(), { recursive: true, mode: 0o700 });
  using file = Deno.openSync(`${networkRunDir()}/lock`, { create: true, write: true });
  file.lockSync(true);
  try {
    return fn();
  } finally {
    file.unlockSync();
  }
}

/** Every stored network, the default one first, then by name. */
export function listNetworks(): NetworkDef[] {
  const out: NetworkDef[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(networksDir())];
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return out;
    throw err;
  }
  for (const e of entries) {
    if (!e.name.endsWith(".json")) continue;
    try {
      out.push(JSON.parse(Deno.readTextFileSync(`${networksDir()}/${e.name}`)));
    } catch { /* being written or removed */ }
  }
  const rank = (n: NetworkDef) => (n.name === DEFAULT_NETWORK ? "" : n.name);
  return out.sort((a, b) => rank(a).localeCompare(rank(b)));
}

/**
 * Finds a network by name, full id or unique id prefix (as Docker does). The default network is
 * created on first use.
 */
export function findNetwork(ref: string): NetworkDef {
  if (ref === DEFAULT_NETWORK) return defaultNetwork();
  const all = listNetworks();
  const exact = all.find((n) => n.name === ref || n.id === ref);
  if (exact !== undefined) return exact;
  const matches = /^[0-9a-f]+$/.test(ref) ? all.filter((n) => n.id.startsWith(ref)) : [];
  if (matches.length === 1) return matches[0]!;
  if (matches.length > 1) {
    throw new UserError(`Multiple networks match "${ref}": use more of the id or the name`);
  }
  throw new UserError(`No such network: ${ref}`);
}

/** The default network, created with the first free subnet of the pool when it is missing. */
export function defaultNetwork(): NetworkDef {
  const existing = listNetworks().find((n) => n.name === DEFAULT_NETWORK);
  if (existing !== undefined) return existing;
  return withNetworkLock(() => {
    const again = listNetworks().find((n) => n.name === DEFAULT_NETWORK);
    if (again !== undefined) return again;
    const bridge = Deno.env.get("MINI_DOCKER_BRIDGE") || "mini-docker0";
    if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,14}$/.test(bridge)) {
      throw new UserError(
        `Invalid MINI_DOCKER_BRIDGE "${bridge}": an interface name of 1 to 15 letters, digits, dots, dashes or underscores`,
      );
    }
    return store(newDef(DEFAULT_NETWORK, freeSubnet(), undefined, bridge, false));
  });
}

/** What `network create` asks for. */
export interface CreateOptions {
  name: string;
  /** CIDR; absent = the next free subnet of the pool. */
  subnet?: string;
  /** Absent = the subnet's first address. */
  gateway?: string;
}

/** Creates a user-defined network (its bridge appears with its first container). */
export function createNetwork(o: CreateOptions): NetworkDef {
  if (!NAME_PATTERN.test(o.name)) {
    throw new UserError(
      `Invalid network name "${o.name}": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`,
    );
  }
  if (PREDEFINED.includes(o.name)) {
    throw new UserError(
      `Cannot create network "${o.name}": it is a pre-defined network, choose another name`,
    );
  }
  let subnet: Subnet | undefined;
  if (o.subnet !== undefined) {
    const parsed = parseSubnet(o.subnet);
    if (typeof parsed === "string") throw new UserError(`Invalid subnet "${o.subnet}": ${parsed}`);
    subnet = parsed;
  }
  if (o.gateway !== undefined && subnet === undefined) {
    throw new UserError(`Invalid gateway "${o.gateway}": --gateway needs --subnet`);
  }
  return withNetworkLock(() => {
    const all = listNetworks();
    if (all.some((n) => n.name === o.name)) {
      throw new UserError(`Network "${o.name}" already exists: choose another name, or remove it`);
    }
    if (subnet !== undefined) {
      for (const n of all) {
        if (overlaps(subnet, parseSubnet(n.subnet) as Subnet)) {
          throw new UserError(
            `Invalid subnet "${o.subnet}": it overlaps network "${n.name}" (${n.subnet})`,
          );
        }
      }
    }
    const id = randomId();
    return store(
      newDef(o.name, subnet ?? freeSubnet(), o.gateway, `br-${id.slice(0, 12)}`, true, id),
    );
  });
}

/** Removes a network's definition; the caller has checked that no container uses it. */
export function removeNetworkDef(def: NetworkDef): void {
  try {
    Deno.removeSync(`${networksDir()}/${def.id}.json`);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
}

function newDef(
  name: string,
  subnet: Subnet,
  gatewayText: string | undefined,
  bridge: string,
  dns: boolean,
  id = randomId(),
): NetworkDef {
  let gateway = subnet.address + 1;
  if (gatewayText !== undefined) {
    const parsed = parseIPv4(gatewayText);
    if (parsed === undefined || !isHostAddress(subnet, parsed)) {
      throw new UserError(
        `Invalid gateway "${gatewayText}": it must be an IPv4 address of the subnet ${
          formatSubnet(subnet)
        }, neither its first nor its last`,
      );
    }
    gateway = parsed;
  }
  return {
    id,
    name,
    driver: "bridge",
    created: new Date().toISOString(),
    subnet: formatSubnet(subnet),
    gateway: formatIPv4(gateway),
    bridge,
    dns,
  };
}

function store(def: NetworkDef): NetworkDef {
  Deno.mkdirSync(networksDir(), { recursive: true, mode: 0o755 });
  const tmp = `${networksDir()}/.${def.id}.${crypto.randomUUID()}`;
  Deno.writeTextFileSync(tmp, JSON.stringify(def, null, 2) + "\n");
  Deno.renameSync(tmp, `${networksDir()}/${def.id}.json`);
  return def;
}

function randomId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A pool of subnets for networks created without --subnet: a base split into `size` prefixes. */
export interface Pool {
  base: Subnet;
  size: number;
}

/**
 * The pools, as dockerd's `--default-address-pool`: $MINI_DOCKER_SUBNET_POOL
 * ("base=10.10.0.0/16,size=24"), else Docker's defaults, 172.17.0.0/16 to 172.31.0.0/16 and
 * 192.168.0.0/16 in /20s.
 */
export function subnetPools(
  text = Deno.env.get("MINI_DOCKER_SUBNET_POOL") ?? "",
): Pool[] {
  if (text === "") {
    return [
      ["172.17.0.0/16", 16],
      ["172.18.0.0/15", 16],
      ["172.20.0.0/14", 16],
      ["172.24.0.0/13", 16],
      ["192.168.0.0/16", 20],
    ].map(([base, size]) => ({
      base: parseSubnet(base as string) as Subnet,
      size: size as number,
    }));
  }
  const fields = new Map(text.split(",").map((kv) => [kv.split("=")[0]!, kv.split("=")[1] ?? ""]));
  const base = parseSubnet(fields.get("base") ?? "");
  const size = Number(fields.get("size"));
  if (typeof base === "string" || !Number.isInteger(size) || size < base.prefix || size > 30) {
    throw new UserError(
      `Invalid MINI_DOCKER_SUBNET_POOL "${text}": expected "base=CIDR,size=N", such as "base=10.10.0.0/16,size=24"`,
    );
  }
  return [{ base, size }];
}

/** The first subnet of the pools that overlaps no network and no route of the host. */
function freeSubnet(): Subnet {
  const taken = [
    ...listNetworks().map((n) => parseSubnet(n.subnet) as Subnet),
    ...hostRoutes(),
  ];
  for (const pool of subnetPools()) {
    const step = 2 ** (32 - pool.size);
    const count = 2 ** (pool.size - pool.base.prefix);
    for (let i = 0; i < count; i++) {
      const candidate = { address: pool.base.address + i * step, prefix: pool.size };
      if (!taken.some((t) => overlaps(t, candidate))) return candidate;
    }
  }
  throw new UserError(
    "Cannot create a network: every subnet of the address pools is in use: remove unused networks (network prune), or pass --subnet",
  );
}

/** The subnet of a stored network. */
export function subnetOf(def: NetworkDef): Subnet {
  return parseSubnet(def.subnet) as Subnet;
}

/** Whether `ip` (dotted quad) lies in the network's subnet. */
export function inNetwork(def: NetworkDef, ip: string): boolean {
  const n = parseIPv4(ip);
  return n !== undefined && contains(subnetOf(def), n);
}
