/**
 * Docker's spellings of the network flags of `run`: `-p/--publish`, `--expose`, `--add-host`
 * and `--dns`, read into the spec's values (base/spec.ts PortMapping), and how ports are shown
 * (`ps`, `port`, `inspect`).
 */
import type { PortMapping } from "../base/spec.ts";
import { UserError } from "../base/errors.ts";

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const IPV6 = /^[0-9a-fA-F]{0,4}(:[0-9a-fA-F]{0,4}){2,7}$/;

/** A port or a range "8000-8010": [first, last]; undefined when malformed. */
function portRange(text: string): [number, number] | undefined {
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(text);
  if (m === null) return undefined;
  const first = Number(m[1]);
  const last = m[2] === undefined ? first : Number(m[2]);
  if (first < 1 || last > 65535 || last < first) return undefined;
  return [first, last];
}

/** "tcp" or "udp" from a "/proto" suffix; the message when it is another. */
function protocolOf(text: string | undefined, flag: string, spec: string): "tcp" | "udp" {
  if (text === undefined || text === "tcp" || text === "udp") return (text ?? "tcp") as "tcp";
  throw new UserError(
    `Invalid ${flag} "${spec}": unsupported protocol "${text}" (use tcp or udp)`,
  );
}

/**
 * `-p [IP:][HOST_PORT:]CONTAINER_PORT[/tcp|udp]`, ports or equal ranges ("8000-8001:80-81"); a
 * missing host port (`-p 80`, `-p 127.0.0.1::80`) is a free one chosen at start (0 here).
 */
export function parsePublish(spec: string): PortMapping[] {
  const usage =
    "expected [IP:][HOST_PORT:]CONTAINER_PORT[/tcp|udp], such as 8080:80, 127.0.0.1:8080:80/tcp or 80";
  const bad = (detail = usage) => new UserError(`Invalid --publish "${spec}": ${detail}`);
  if (spec.startsWith("[")) throw bad("IPv6 host addresses are not supported");
  const slash = spec.lastIndexOf("/");
  const protocol = protocolOf(slash < 0 ? undefined : spec.slice(slash + 1), "--publish", spec);
  const parts = (slash < 0 ? spec : spec.slice(0, slash)).split(":");
  if (parts.length > 3) throw bad();
  const [ip, host, container] = parts.length === 3
    ? parts
    : parts.length === 2
    ? ["", parts[0]!, parts[1]!]
    : ["", "", parts[0]!];
  if (ip !== "" && !IPV4.test(ip!)) {
    throw bad(`the host address "${ip}" is not an IPv4 address`);
  }
  const inside = portRange(container!);
  if (inside === undefined) {
    throw bad(`the container port "${container}" is not a port or a range (1-65535)`);
  }
  const count = inside[1] - inside[0] + 1;
  let outside: [number, number] | undefined;
  if (host !== "") {
    outside = portRange(host!);
    if (outside === undefined) {
      throw bad(`the host port "${host}" is not a port or a range (1-65535)`);
    }
    if (outside[1] - outside[0] + 1 !== count) {
      throw bad("the host and container port ranges must have the same size");
    }
  }
  return Array.from({ length: count }, (_, i) => ({
    hostIp: ip!,
    hostPort: outside === undefined ? 0 : outside[0] + i,
    containerPort: inside[0] + i,
    protocol,
  }));
}

/** `--expose PORT[-END][/tcp|udp]`, and an image's ExposedPorts keys: "80/tcp" each. */
export function parseExpose(spec: string, flag = "--expose"): string[] {
  const slash = spec.lastIndexOf("/");
  const protocol = protocolOf(slash < 0 ? undefined : spec.slice(slash + 1), flag, spec);
  const range = portRange(slash < 0 ? spec : spec.slice(0, slash));
  if (range === undefined) {
    throw new UserError(
      `Invalid ${flag} "${spec}": expected a port or a range with an optional /tcp or /udp, such as 80 or 8000-8010/udp`,
    );
  }
  return Array.from({ length: range[1] - range[0] + 1 }, (_, i) => `${range[0] + i}/${protocol}`);
}

/** `--add-host NAME:IP` (IP may be `host-gateway`): checked, returned as given. */
export function parseAddHost(spec: string): string {
  const colon = spec.indexOf(":");
  const name = spec.slice(0, colon);
  const ip = spec.slice(colon + 1);
  if (colon < 1 || !/^[a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?$/.test(name)) {
    throw new UserError(`Invalid --add-host "${spec}": expected NAME:IP, such as db:10.0.0.5`);
  }
  if (ip !== "host-gateway" && !IPV4.test(ip) && !IPV6.test(ip)) {
    throw new UserError(
      `Invalid --add-host "${spec}": "${ip}" is not an IP address (or host-gateway)`,
    );
  }
  return spec;
}

/** `--dns IP`: checked, returned as given. */
export function parseDns(spec: string): string {
  if (!IPV4.test(spec) && !IPV6.test(spec)) {
    throw new UserError(`Invalid --dns "${spec}": expected an IP address, such as 9.9.9.9`);
  }
  return spec;
}

/** "0.0.0.0:8080->80/tcp", as Docker's PORTS column (an unpublished exposed port: "80/tcp"). */
export function formatPort(p: PortMapping): string {
  return `${p.hostIp || "0.0.0.0"}:${p.hostPort}->${p.containerPort}/${p.protocol}`;
}
