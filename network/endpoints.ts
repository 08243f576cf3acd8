/**
 * Endpoints: a container's place on its networks, one record per container under
 * `<run root>/networks/endpoints/<id>.json`. The record is the address allocation (an address
 * is taken while a record holds it: there is no other table to leak), the published ports, the
 * kept network namespace, and how far the driver got, so that whoever comes next (the
 * container's owner, `rm`, or `ps`/`prune` after a crash) can tear everything down.
 *
 * Written under the network lock (store.ts), atomically (temp file + rename).
 */
import type { PortMapping } from "../base/spec.ts";
import { UserError } from "../base/errors.ts";
import { formatIPv4, isHostAddress, lastAddress, parseIPv4 } from "./ip.ts";
import { type NetworkDef, networkRunDir, subnetOf } from "./store.ts";

/** One network of a container. */
export interface Endpoint {
  /** A copy of the network's definition: teardown never depends on the store. */
  network: NetworkDef;
  /** The container's interface: eth0, eth1, ... */
  interface: string;
  /** The container's address on the network. */
  ip: string;
  /** Names the network's DNS gives the container besides its name. */
  aliases: string[];
  /**
   * "allocated": nothing done yet; "pending": the driver was asked to set it up (teardown is
   * needed from now on, whatever the answer); "up": set up.
   */
  state: "allocated" | "pending" | "up";
  /** The interface's MAC address, once up. */
  mac?: string;
  /** Whether the published ports are forwarded through this endpoint (the run's network). */
  ports: boolean;
}

/**
 * A container's record, or a network's keeper's: an endpoint that keeps the network's bridge and
 * rules while the network exists (see mod.ts), whose id is `keeperId(network)`.
 */
export interface EndpointRecord {
  containerId: string;
  containerName: string;
  /** A network's keeper, not a container. */
  keeper?: true;
  /** The container's network namespace, kept by a bind mount at this path (netns.ts). */
  netns?: string;
  endpoints: Endpoint[];
  /** Published ports, host ports resolved. */
  ports: PortMapping[];
  /** `--dns`: upstream servers of the network's DNS for this container. */
  dns: string[];
}

function endpointsDir(): string {
  return `${networkRunDir()}/endpoints`;
}

function recordPath(id: string): string {
  return `${endpointsDir()}/${id}.json`;
}

/** A container's record, or undefined. */
export function readRecord(id: string): EndpointRecord | undefined {
  try {
    return JSON.parse(Deno.readTextFileSync(recordPath(id)));
  } catch {
    return undefined;
  }
}

/** Every record. */
export function listRecords(): EndpointRecord[] {
  const out: EndpointRecord[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(endpointsDir())];
  } catch {
    return out;
  }
  for (const e of entries) {
    if (!e.name.endsWith(".json")) continue;
    const r = readRecord(e.name.slice(0, -5));
    if (r !== undefined) out.push(r);
  }
  return out;
}

/** Writes a record atomically; call under the network lock. */
export function writeRecord(record: EndpointRecord): void {
  Deno.mkdirSync(endpointsDir(), { recursive: true, mode: 0o700 });
  const tmp = `${endpointsDir()}/.${record.containerId}.${crypto.randomUUID()}`;
  Deno.writeTextFileSync(tmp, JSON.stringify(record, null, 2) + "\n");
  Deno.renameSync(tmp, recordPath(record.containerId));
}

/** Removes a record; call under the network lock. */
export function removeRecord(id: string): void {
  try {
    Deno.removeSync(recordPath(id));
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
}

/** The record id of a network's keeper. */
export function keeperId(network: NetworkDef): string {
  return `keeper-${network.id.slice(0, 12)}`;
}

/** The containers (names) with an endpoint on `network`. */
export function usersOf(
  network: NetworkDef,
  records: readonly EndpointRecord[] = listRecords(),
): string[] {
  return records
    .filter((r) => !r.keeper && r.endpoints.some((e) => e.network.id === network.id))
    .map((r) => r.containerName);
}

/**
 * An address on `network` that no record holds: `requested` (--ip) when it is free, else the
 * first free one after the gateway (the last free one `fromTop`, for a keeper). Call under the
 * network lock.
 */
export function allocateAddress(
  network: NetworkDef,
  requested?: string,
  records: readonly EndpointRecord[] = listRecords(),
  fromTop = false,
): string {
  const subnet = subnetOf(network);
  const gateway = parseIPv4(network.gateway)!;
  const taken = new Map<number, string>();
  for (const r of records) {
    for (const e of r.endpoints) {
      if (e.network.id !== network.id) continue;
      taken.set(
        parseIPv4(e.ip)!,
        r.keeper
          ? "the network's keeper (the endpoint that keeps its bridge)"
          : `container "${r.containerName}"`,
      );
    }
  }
  if (requested !== undefined) {
    const ip = parseIPv4(requested);
    if (ip === undefined || !isHostAddress(subnet, ip) || ip === gateway) {
      throw new UserError(
        `Invalid --ip "${requested}": it must be an address of network "${network.name}" (${network.subnet}) other than its gateway ${network.gateway}`,
      );
    }
    const holder = taken.get(ip);
    if (holder !== undefined) {
      throw new UserError(
        `Address ${requested} is already in use on network "${network.name}" by ${holder}`,
      );
    }
    return requested;
  }
  const first = subnet.address + 1;
  const last = lastAddress(subnet) - 1;
  for (let i = 0; i <= last - first; i++) {
    const ip = fromTop ? last - i : first + i;
    if (ip !== gateway && !taken.has(ip)) return formatIPv4(ip);
  }
  throw new UserError(
    `No free address left on network "${network.name}" (${network.subnet}): remove containers, or use a larger subnet`,
  );
}

/**
 * The record that already publishes host port `port` (same protocol, overlapping host address),
 * if any: two containers cannot forward the same port.
 */
export function portHolder(
  port: PortMapping,
  records: readonly EndpointRecord[] = listRecords(),
): string | undefined {
  for (const r of records) {
    for (const p of r.ports) {
      const sameAddress = p.hostIp === "" || port.hostIp === "" || p.hostIp === port.hostIp;
      if (p.protocol === port.protocol && p.hostPort === port.hostPort && sameAddress) {
        return r.containerName;
      }
    }
  }
  return undefined;
}
