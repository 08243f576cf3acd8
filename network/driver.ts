/**
 * The network driver: what connects a kept network namespace to a network and disconnects it
 * again (interfaces, addresses, routes, NAT and filter rules, port forwarding, DNS entries). One
 * small interface, as the cgroup drivers: mini-docker decides (networks, addresses, ports) and
 * the driver carries it out. The one implementation is netavark (netavark.ts), Podman's network
 * stack; see network/README.md for why.
 */
import type { PortMapping } from "../base/spec.ts";
import type { Endpoint } from "./endpoints.ts";
import { Netavark } from "./netavark.ts";

/** One container on one network, as decided by mini-docker. */
export interface DriverRequest {
  containerId: string;
  /** Its name, which the network's DNS resolves (with the endpoint's aliases). */
  containerName: string;
  endpoint: Endpoint;
  /** Host ports forwarded to the container through this endpoint (resolved, none 0). */
  ports: PortMapping[];
  /** Upstream name servers for this container (`--dns`), on a network with its own DNS. */
  dns: string[];
}

/** A network driver. */
export interface NetworkDriver {
  readonly name: string;
  /** Connects the namespace at `netns` to the endpoint's network; returns the interface's MAC. */
  setup(netns: string, request: DriverRequest): Promise<{ mac: string }>;
  /**
   * Undoes `setup` (also a half-done one). Never throws for what is already gone; returns what
   * could not be undone, in words, or undefined.
   */
  teardown(netns: string, request: DriverRequest): Promise<string | undefined>;
  /**
   * Gives a connected endpoint new DNS names (`rename`): the request's container name and the
   * endpoint's aliases, as a setup would have registered them.
   */
  rename(request: DriverRequest): Promise<void>;
}

/** A program's end: its exit code and what it wrote. */
export interface ProgramResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs a program to its end with `stdin` as its input. The engine provides it (setRunner): a
 * mini-docker process starts its children in one way only (posix_spawn, and one reaper that
 * waits for them all), which a Deno.Command here would race.
 */
export type Runner = (
  path: string,
  args: readonly string[],
  options: { env: readonly string[]; stdin: string },
) => Promise<ProgramResult>;

let runner: Runner | undefined;

/** Sets how the driver runs its programs (see Runner); the engine calls it once. */
export function setRunner(run: Runner): void {
  runner = run;
}

/** The runner set by the engine. */
export function runProgram(
  path: string,
  args: readonly string[],
  options: { env: readonly string[]; stdin: string },
): Promise<ProgramResult> {
  if (runner === undefined) throw new Error("network/: no runner set (setRunner)");
  return runner(path, args, options);
}

let chosen: NetworkDriver | undefined;

/** The driver of this host, detected once; a UserError saying what to install when none works. */
export function networkDriver(): NetworkDriver {
  chosen ??= Netavark.detect();
  return chosen;
}
