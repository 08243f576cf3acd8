/**
 * Container networks, as the engine uses them. A container on a network (`bridge` or a
 * user-defined one) goes through three steps, each of which leaves a record that the next one,
 * or any later mini-docker command, can finish from:
 *
 * 1. `attach`, before the container's thread starts: the network found (the default one
 *    created on first use), the published host ports bound (ports.ts), an address allocated
 *    (one record under the run root, written under the network lock: endpoints.ts), and a new
 *    network namespace kept under the run root (netns.ts), which the container's thread joins.
 *    The driver starts connecting it at once (`Attachment.ready`), while the container is
 *    being prepared; the gate waits for it, so the command's first instruction has its network.
 * 2. The container runs.
 * 3. `release(id)` once the container is gone, by its owner, `rm`, or `ps`/`prune` after a
 *    crash: the driver's teardown, the namespace let go, the record (the address) removed.
 *
 * Each network has a keeper: an endpoint of its own (in a namespace of its own, with the last
 * address of the subnet), set up with the network's first container and torn down by `network
 * rm`. It keeps the bridge and the network's NAT and filter rules while the network exists, as
 * Docker keeps docker0: netavark removes them with a bridge's last endpoint, and that "complete
 * teardown" takes about 200 ms of iptables calls, which every run would otherwise pay at its
 * end (a container's own teardown takes about 20 ms).
 *
 * Driver calls and releases are serialized host-wide, so that a release racing another (the
 * container's owner and `rm -f`) finds the record gone rather than tearing down twice.
 */
import type { ContainerNetwork, PortMapping } from "../base/spec.ts";
import { UserError } from "../base/errors.ts";
import { type DriverRequest, networkDriver } from "./driver.ts";
import {
  allocateAddress,
  type Endpoint,
  type EndpointRecord,
  keeperId,
  listRecords,
  portHolder,
  readRecord,
  removeRecord,
  usersOf,
  writeRecord,
} from "./endpoints.ts";
import { createNamespace, isKept, netnsPath, releaseNamespace } from "./netns.ts";
import { reservePorts } from "./ports.ts";
import { waitForName } from "./dns.ts";
import {
  DEFAULT_NETWORK,
  findNetwork,
  inNetwork,
  type NetworkDef,
  removeNetworkDef,
  withNetworkLock,
} from "./store.ts";
import type { EtcNetwork } from "./etc.ts";
import { trace } from "../base/trace.ts";
import * as libc from "../base/libc.ts";

export { type Endpoint, type EndpointRecord, listRecords, readRecord } from "./endpoints.ts";
export { setRunner } from "./driver.ts";
export { type NetworkDef } from "./store.ts";

/** Whether the container's network mode is a network of ours (not `host` or `none`). */
export function hasOwnNetwork(network: ContainerNetwork | undefined): boolean {
  return network !== undefined && network.mode !== "host" && network.mode !== "none";
}

/**
 * Checks a run's network settings before any work: the network exists, the driver is
 * installed, and `--ip`/`--network-alias` are used on a user-defined network (Docker's rule).
 */
export function checkNetwork(network: ContainerNetwork): void {
  const flag = network.ip !== undefined ? "--ip" : "--network-alias";
  const userOnly = network.ip !== undefined || network.aliases.length > 0;
  if (!hasOwnNetwork(network)) {
    if (userOnly) {
      throw new UserError(
        `${flag} needs a user-defined network: create one with "mini-docker network create NAME" and run with --network NAME`,
      );
    }
    return;
  }
  const def = findNetwork(network.mode);
  if (def.name === DEFAULT_NETWORK && userOnly) {
    throw new UserError(
      `${flag} is supported on user-defined networks only, not on the default network "bridge": create one with "mini-docker network create NAME"`,
    );
  }
  if (network.ip !== undefined && !inNetwork(def, network.ip)) {
    throw new UserError(
      `Invalid --ip "${network.ip}": it is not in network "${def.name}" (${def.subnet})`,
    );
  }
  networkDriver();
}

/** Who the container is, for its network. */
export interface Member {
  id: string;
  name: string;
  hostname: string;
}

/** A container's place on its network, from before its start to after its end. */
export interface Attachment {
  /** The network namespace the container joins (kept at this path). */
  netns: string;
  /** The network, and what the container's /etc files need. */
  network: NetworkDef;
  etc: EtcNetwork;
  /** Published ports, host ports resolved. */
  ports: PortMapping[];
  /** Settles when the driver has connected the namespace (or failed to). */
  ready: Promise<void>;
  /** Once the container is gone: everything undone (see `release`); the ports let go. */
  release(): Promise<string | undefined>;
}

/** DNS names of a container besides its name: Docker's short id, its host name, its aliases. */
function dnsAliases(member: Member, aliases: readonly string[]): string[] {
  const names = [member.id.slice(0, 12), member.hostname, ...aliases];
  return [...new Set(names)].filter((n) => n !== member.name);
}

/**
 * Binds the published ports, allocates the container's address, records both, creates the
 * namespace and starts connecting it. Throws a UserError (port in use, no address left) with
 * nothing left behind; a later failure of the driver comes through `ready`.
 */
export function attach(member: Member, network: ContainerNetwork): Attachment {
  const driver = networkDriver();
  const def = findNetwork(network.mode);
  const { record, reservation } = withNetworkLock(() => {
    const records = listRecords();
    for (const p of network.ports) {
      const holder = p.hostPort === 0 ? undefined : portHolder(p, records);
      if (holder !== undefined) {
        throw new UserError(
          `Cannot publish ${
            p.hostIp || "0.0.0.0"
          }:${p.hostPort}/${p.protocol}: container "${holder}" publishes it already`,
        );
      }
    }
    const reservation = reservePorts(network.ports);
    try {
      const record: EndpointRecord = {
        containerId: member.id,
        containerName: member.name,
        netns: netnsPath(member.id),
        endpoints: [{
          network: def,
          interface: "eth0",
          ip: allocateAddress(def, network.ip, records),
          aliases: dnsAliases(member, network.aliases),
          state: "allocated",
          ports: true,
        }],
        ports: reservation.ports,
        dns: network.dns,
      };
      writeRecord(record);
      return { record, reservation };
    } catch (err) {
      reservation[Symbol.dispose]();
      throw err;
    }
  });
  const endpoint = record.endpoints[0]!;
  try {
    createNamespace(record.netns!);
  } catch (err) {
    withNetworkLock(() => removeRecord(member.id));
    reservation[Symbol.dispose]();
    throw new UserError(
      `Cannot create the container's network namespace: ${(err as Error).message}`,
    );
  }
  const ready = serialized(async () => {
    trace("network: driver lock");
    // Awaited only when there is work: otherwise netavark starts in this turn (see serialized).
    if (!keeperUp(def)) await keep(def);
    endpoint.state = "pending";
    withNetworkLock(() => writeRecord(record));
    endpoint.mac = (await driver.setup(record.netns!, request(record, endpoint))).mac;
    endpoint.state = "up";
    withNetworkLock(() => writeRecord(record));
    trace("network: set up");
  }).then(async () => {
    if (def.dns) await waitForName(record.netns!, def.gateway, member.name);
  });
  ready.catch(() => {});
  let released: Promise<string | undefined> | undefined;
  return {
    netns: record.netns!,
    network: def,
    etc: { ip: endpoint.ip, gateway: def.gateway, dns: def.dns },
    ports: record.ports,
    ready,
    release() {
      // After the setup has settled: a release must not overtake it.
      released ??= ready.catch(() => {})
        .then(() => release(member.id))
        .finally(() => reservation[Symbol.dispose]());
      return released;
    },
  };
}

function request(record: EndpointRecord, endpoint: Endpoint): DriverRequest {
  return {
    containerId: record.containerId,
    containerName: record.containerName,
    endpoint,
    ports: endpoint.ports ? record.ports : [],
    dns: record.dns,
  };
}

/** Whether the network's keeper is set up and its namespace still kept. */
function keeperUp(def: NetworkDef): boolean {
  const id = keeperId(def);
  return readRecord(id)?.endpoints[0]?.state === "up" && isKept(netnsPath(id));
}

/**
 * The network's keeper, set up unless it exists: an endpoint with the subnet's last free
 * address and no DNS name, in a namespace of its own. Call serialized.
 */
async function keep(def: NetworkDef): Promise<void> {
  if (keeperUp(def)) return;
  // One half made by a run that was killed, or whose namespace someone unmounted: undone first.
  const existing = readRecord(keeperId(def));
  if (existing !== undefined) await undo(existing);
  const id = keeperId(def);
  const record = withNetworkLock((): EndpointRecord => {
    const record: EndpointRecord = {
      containerId: id,
      containerName: id,
      keeper: true,
      netns: netnsPath(id),
      endpoints: [{
        network: { ...def, dns: false },
        interface: "eth0",
        ip: allocateAddress(def, undefined, listRecords(), true),
        aliases: [],
        state: "allocated",
        ports: false,
      }],
      ports: [],
      dns: [],
    };
    writeRecord(record);
    return record;
  });
  try {
    createNamespace(record.netns!);
  } catch (err) {
    withNetworkLock(() => removeRecord(id));
    throw new UserError(`Cannot create the network's namespace: ${(err as Error).message}`);
  }
  const endpoint = record.endpoints[0]!;
  endpoint.state = "pending";
  withNetworkLock(() => writeRecord(record));
  await networkDriver().setup(record.netns!, request(record, endpoint));
  endpoint.state = "up";
  withNetworkLock(() => writeRecord(record));
}

/** Tears a record's endpoints down, lets its namespace go, removes it. Call serialized. */
async function undo(record: EndpointRecord): Promise<string | undefined> {
  const problems: string[] = [];
  const touched = record.endpoints.filter((e) => e.state !== "allocated");
  if (touched.length > 0) {
    const driver = networkDriver();
    for (const endpoint of touched) {
      const problem = await driver.teardown(
        netnsPath(record.containerId),
        request(record, endpoint),
      );
      if (problem !== undefined) problems.push(`${endpoint.network.name}: ${problem}`);
    }
  }
  releaseNamespace(netnsPath(record.containerId));
  withNetworkLock(() => removeRecord(record.containerId));
  return problems.length === 0 ? undefined : problems.join("; ");
}

/**
 * Tears down every endpoint of container `id` that the driver was asked to set up, lets its
 * namespace go and removes its record (its addresses). Does nothing when there is no record.
 * Returns what the driver could not undo, in words, or undefined.
 */
export function release(id: string): Promise<string | undefined> {
  return serialized(async () => {
    const record = readRecord(id);
    return record === undefined || record.keeper ? undefined : await undo(record);
  });
}

/**
 * Releases the networks of the containers that `gone` says are gone (their record outlived
 * them: a killed mini-docker or supervisor). Returns their ids.
 */
export async function releaseGone(gone: (id: string) => boolean): Promise<string[]> {
  const out: string[] = [];
  for (const r of listRecords()) {
    if (r.keeper || !gone(r.containerId)) continue;
    await release(r.containerId);
    out.push(r.containerId);
  }
  return out;
}

/**
 * Removes a network: refused while a container is on it; its keeper goes first, and with it
 * (netavark's complete teardown) the bridge and the network's rules. The default network may
 * be removed too when unused: mini-docker has no daemon to own it, and it comes back with the
 * next container that uses it. Returns what the driver could not undo, in words (the network
 * is removed all the same: trying again would not undo more), or undefined.
 */
export function removeNetwork(def: NetworkDef): Promise<string | undefined> {
  return serialized(async () => {
    const records = listRecords();
    const users = usersOf(def, records);
    if (users.length > 0) {
      throw new UserError(
        `Cannot remove network "${def.name}": it has active endpoints (${
          users.map((u) => `container "${u}"`).join(", ")
        }): stop or disconnect them first`,
      );
    }
    const keeper = records.find((r) => r.containerId === keeperId(def));
    const problem = keeper === undefined ? undefined : await undo(keeper);
    withNetworkLock(() => {
      if (usersOf(def).length === 0) removeNetworkDef(def);
    });
    return problem;
  });
}

/** The networks in use: by a container, not only by their keeper. */
export function networksInUse(): Set<string> {
  const out = new Set<string>();
  for (const r of listRecords()) {
    if (r.keeper) continue;
    for (const e of r.endpoints) out.add(e.network.id);
  }
  return out;
}

/** `network connect`: a running container joins one more network. */
export async function connect(
  containerId: string,
  network: NetworkDef,
  options: { aliases: string[]; ip?: string; hostname: string },
): Promise<Endpoint> {
  const userOnly = options.ip !== undefined || options.aliases.length > 0;
  if (network.name === DEFAULT_NETWORK && userOnly) {
    throw new UserError(
      `${
        options.ip !== undefined ? "--ip" : "--alias"
      } is supported on user-defined networks only, not on the default network "bridge"`,
    );
  }
  if (options.ip !== undefined && !inNetwork(network, options.ip)) {
    throw new UserError(
      `Invalid --ip "${options.ip}": it is not in network "${network.name}" (${network.subnet})`,
    );
  }
  const driver = networkDriver();
  return await serialized(async () => {
    const { record, endpoint } = withNetworkLock(() => {
      const record = readRecord(containerId);
      if (record === undefined || record.netns === undefined) {
        throw new UserError(
          `Container ${
            containerId.slice(0, 12)
          } has no network namespace of mini-docker's to connect: it runs with --network host or none`,
        );
      }
      if (record.endpoints.some((e) => e.network.id === network.id)) {
        throw new UserError(
          `Container "${record.containerName}" is already connected to network "${network.name}"`,
        );
      }
      const used = new Set(record.endpoints.map((e) => e.interface));
      let n = 0;
      while (used.has(`eth${n}`)) n++;
      const endpoint: Endpoint = {
        network,
        interface: `eth${n}`,
        ip: allocateAddress(network, options.ip),
        aliases: dnsAliases(
          { id: containerId, name: record.containerName, hostname: options.hostname },
          options.aliases,
        ),
        state: "pending",
        ports: false,
      };
      record.endpoints.push(endpoint);
      writeRecord(record);
      return { record, endpoint };
    });
    const update = (change: (endpoints: Endpoint[]) => Endpoint[]) =>
      withNetworkLock(() => {
        const now = readRecord(containerId);
        if (now === undefined) return;
        now.endpoints = change(now.endpoints);
        writeRecord(now);
      });
    try {
      await keep(network);
      endpoint.mac = (await driver.setup(record.netns!, request(record, endpoint))).mac;
      if (network.dns) await waitForName(record.netns!, network.gateway, record.containerName);
    } catch (err) {
      await driver.teardown(record.netns!, request(record, endpoint));
      update((all) => all.filter((e) => e.network.id !== network.id));
      throw err;
    }
    endpoint.state = "up";
    update((all) => all.map((e) => e.network.id === network.id ? endpoint : e));
    return endpoint;
  });
}

/**
 * A running container's new name in the DNS of its networks (`rename`): its record, and the
 * driver's entries; the name answers once this returns. Its old name stays only when it is also
 * its host name (which resolves too).
 */
export async function renameMember(
  containerId: string,
  oldName: string,
  newName: string,
  hostname: string,
): Promise<void> {
  const driver = networkDriver();
  await serialized(async () => {
    const record = withNetworkLock(() => {
      const record = readRecord(containerId);
      if (record === undefined || record.keeper) return undefined;
      record.containerName = newName;
      for (const e of record.endpoints) {
        e.aliases = dnsAliases({ id: containerId, name: newName, hostname }, [
          ...e.aliases.filter((a) => a !== newName),
          ...(hostname === oldName ? [oldName] : []),
        ]);
      }
      writeRecord(record);
      return record;
    });
    for (const endpoint of record?.endpoints ?? []) {
      if (!endpoint.network.dns || endpoint.state !== "up") continue;
      await driver.rename(request(record!, endpoint));
      await waitForName(record!.netns!, endpoint.network.gateway, newName);
    }
  });
}

/** `network disconnect`: a running container leaves one of its networks. */
export async function disconnect(containerId: string, network: NetworkDef): Promise<void> {
  const driver = networkDriver();
  await serialized(async () => {
    const record = readRecord(containerId);
    const endpoint = record?.endpoints.find((e) => e.network.id === network.id);
    if (record === undefined || endpoint === undefined) {
      throw new UserError(
        `Container ${containerId.slice(0, 12)} is not connected to network "${network.name}"`,
      );
    }
    const problem = await driver.teardown(netnsPath(containerId), request(record, endpoint));
    withNetworkLock(() => {
      const now = readRecord(containerId);
      if (now === undefined) return;
      now.endpoints = now.endpoints.filter((e) => e.network.id !== network.id);
      if (endpoint.ports) now.ports = [];
      writeRecord(now);
    });
    if (problem !== undefined) {
      throw new UserError(`Cannot disconnect from network "${network.name}": ${problem}`);
    }
  });
}

/** The host-wide lock of driver operations and releases (the kernel's rules are the host's). */
const LOCK = "/run/lock/mini-docker-network.lock";

/**
 * Runs `fn` holding the host-wide lock. When the lock is free, `fn` starts at once, in the
 * caller's turn: `attach` thereby starts netavark before the caller goes on preparing the
 * container (an asynchronous lock would start it only when the caller next waits). When it is
 * held, the lock is tried again every few milliseconds.
 */
function serialized<T>(fn: () => Promise<T>): Promise<T> {
  let fd: number;
  try {
    Deno.mkdirSync("/run/lock", { recursive: true, mode: 0o1777 });
    fd = libc.open(LOCK, libc.O_CREAT | libc.O_RDWR | libc.O_CLOEXEC, 0o600);
  } catch (err) {
    return Promise.reject(err);
  }
  const run = () => fn().finally(() => libc.close(fd));
  try {
    if (libc.tryLock(fd)) return run();
  } catch (err) {
    libc.close(fd);
    return Promise.reject(err);
  }
  return (async () => {
    while (!libc.tryLock(fd)) await new Promise((r) => setTimeout(r, 5));
    return await run();
  })();
}
