/**
 * IPv4 addresses and subnets as numbers: parsing Docker's spellings, overlap, the usable range
 * of a subnet, and the host's routes (a new network must not hide one).
 */

/** A subnet: its network address (host bits zero) and prefix length. */
export interface Subnet {
  address: number;
  prefix: number;
}

/** The address as a 32-bit unsigned number, or undefined when it is not dotted-quad IPv4. */
export function parseIPv4(text: string): number | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const part of parts) {
    if (!/^(0|[1-9]\d{0,2})$/.test(part) || Number(part) > 255) return undefined;
    n = n * 256 + Number(part);
  }
  return n;
}

export function formatIPv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

/** The mask of a prefix length, as an unsigned number. */
export function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/**
 * Parses "10.1.0.0/16". The problem, in words, when it is not a subnet: not IPv4, a prefix out
 * of range, or host bits set ("10.1.2.3/16" names an address, not a network).
 */
export function parseSubnet(text: string): Subnet | string {
  const slash = text.indexOf("/");
  const address = parseIPv4(slash < 0 ? text : text.slice(0, slash));
  const prefixText = slash < 0 ? "" : text.slice(slash + 1);
  if (address === undefined || !/^\d{1,2}$/.test(prefixText)) {
    return "expected an IPv4 network in CIDR notation, such as 10.1.0.0/16 (IPv6 is not supported)";
  }
  const prefix = Number(prefixText);
  if (prefix > 29 || prefix < 8) {
    return "the prefix length must be 8 to 29 (room for the gateway, the bridge's keeper and containers)";
  }
  const network = (address & maskOf(prefix)) >>> 0;
  if (network !== address) {
    return `host bits are set: the network of this prefix is ${formatIPv4(network)}/${prefix}`;
  }
  return { address, prefix };
}

export function formatSubnet(s: Subnet): string {
  return `${formatIPv4(s.address)}/${s.prefix}`;
}

/** The last address of the subnet (its broadcast address). */
export function lastAddress(s: Subnet): number {
  return (s.address | ~maskOf(s.prefix)) >>> 0;
}

/** Whether `ip` lies in the subnet. */
export function contains(s: Subnet, ip: number): boolean {
  return ((ip & maskOf(s.prefix)) >>> 0) === s.address;
}

/** Whether two subnets share any address. */
export function overlaps(a: Subnet, b: Subnet): boolean {
  return a.address <= lastAddress(b) && b.address <= lastAddress(a);
}

/** Whether `ip` may be given to a container or a gateway: not the network or broadcast address. */
export function isHostAddress(s: Subnet, ip: number): boolean {
  return contains(s, ip) && ip !== s.address && ip !== lastAddress(s);
}

/**
 * The subnets of the host's IPv4 routes (main table, /proc/net/route), the default route left
 * out: a new network must not overlap them, or the host would route some of its own traffic
 * into it.
 */
export function hostRoutes(text?: string): Subnet[] {
  let table = text;
  if (table === undefined) {
    try {
      table = Deno.readTextFileSync("/proc/net/route");
    } catch {
      return [];
    }
  }
  const out: Subnet[] = [];
  for (const line of table.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    // Little-endian hex: "0002000A" is 10.0.2.0.
    const le = (hex: string) => {
      const n = parseInt(hex, 16);
      return (((n & 255) << 24) | (((n >>> 8) & 255) << 16) | (((n >>> 16) & 255) << 8) |
        (n >>> 24)) >>> 0;
    };
    const mask = le(f[7]!);
    if (mask === 0) continue;
    const prefix = Math.clz32(~mask >>> 0); // a contiguous mask: its leading ones
    out.push({ address: (le(f[1]!) & maskOf(prefix)) >>> 0, prefix });
  }
  return out;
}
