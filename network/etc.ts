/**
 * The container's /etc/hosts and /etc/resolv.conf, as Docker writes them: its own address under
 * its host name, `--add-host` lines, and name servers that answer from inside its namespace (the
 * network's DNS on a user-defined network; else the host's, without the loopback ones, which
 * would be the container's own loopback).
 */
import type { ContainerNetwork } from "../base/spec.ts";

/** What the files need from the container's network; absent for `host` and `none`. */
export interface EtcNetwork {
  /** The container's address. */
  ip: string;
  /** The network's gateway (the host's side). */
  gateway: string;
  /** Whether the network has its own DNS server, on the gateway (user-defined networks). */
  dns: boolean;
}

/** Docker's fallback when the host has no name server a container can reach. */
const FALLBACK_DNS = ["8.8.8.8", "8.8.4.4"];

/** The lines of `--add-host`, "NAME:IP" (`host-gateway` is the host as seen from inside). */
export function extraHostLines(
  extraHosts: readonly string[],
  mode: string,
  net?: EtcNetwork,
): string[] {
  return extraHosts.map((entry) => {
    const colon = entry.indexOf(":");
    const name = entry.slice(0, colon);
    let ip = entry.slice(colon + 1);
    if (ip === "host-gateway") ip = net?.gateway ?? (mode === "host" ? "127.0.0.1" : "");
    return `${ip}\t${name}`;
  });
}

/** /etc/hosts. */
export function hostsFile(
  hostname: string,
  network: ContainerNetwork | undefined,
  net?: EtcNetwork,
): string {
  return [
    "127.0.0.1\tlocalhost",
    "::1\tlocalhost ip6-localhost ip6-loopback",
    "fe00::0\tip6-localnet",
    "ff00::0\tip6-mcastprefix",
    "ff02::1\tip6-allnodes",
    "ff02::2\tip6-allrouters",
    ...extraHostLines(network?.extraHosts ?? [], network?.mode ?? "host", net),
    `${net?.ip ?? "127.0.1.1"}\t${hostname}`,
    "",
  ].join("\n");
}

/** /etc/resolv.conf, from the host's (`hostConf`). */
export function resolvConf(
  hostConf: string,
  network: ContainerNetwork | undefined,
  net?: EtcNetwork,
): string {
  const lines = hostConf.split("\n");
  const nameservers = lines
    .map((l) => /^\s*nameserver\s+(\S+)/.exec(l)?.[1])
    .filter((ns): ns is string => ns !== undefined);
  const others = lines.filter((l) => !/^\s*nameserver\s/.test(l) && l.trim() !== "");
  let servers: string[];
  if (net?.dns) {
    // The network's DNS answers for the containers and forwards the rest (to --dns, or the
    // host's servers).
    servers = [net.gateway];
  } else if ((network?.dns.length ?? 0) > 0) {
    servers = network!.dns;
  } else if (net !== undefined) {
    // The container's own loopback is not the host's: drop 127.x and ::1.
    servers = nameservers.filter((ns) => !/^127\.|^::1$/.test(ns));
    if (servers.length === 0) servers = FALLBACK_DNS;
  } else {
    return hostConf;
  }
  return [...others, ...servers.map((s) => `nameserver ${s}`), ""].join("\n");
}
