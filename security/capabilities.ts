/**
 * Linux capabilities by name, Docker's default set, and Docker's rules for `--cap-add`,
 * `--cap-drop` and `--privileged` (moby's TweakCapabilities). Pure data and functions: the
 * recipe applies the resulting sets with capset(2) and PR_CAPBSET_DROP.
 */
import { UserError } from "../base/errors.ts";

/** Every capability Linux knows, in bit order (<linux/capability.h>). */
export const CAPABILITIES = [
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_DAC_READ_SEARCH",
  "CAP_FOWNER",
  "CAP_FSETID",
  "CAP_KILL",
  "CAP_SETGID",
  "CAP_SETUID",
  "CAP_SETPCAP",
  "CAP_LINUX_IMMUTABLE",
  "CAP_NET_BIND_SERVICE",
  "CAP_NET_BROADCAST",
  "CAP_NET_ADMIN",
  "CAP_NET_RAW",
  "CAP_IPC_LOCK",
  "CAP_IPC_OWNER",
  "CAP_SYS_MODULE",
  "CAP_SYS_RAWIO",
  "CAP_SYS_CHROOT",
  "CAP_SYS_PTRACE",
  "CAP_SYS_PACCT",
  "CAP_SYS_ADMIN",
  "CAP_SYS_BOOT",
  "CAP_SYS_NICE",
  "CAP_SYS_RESOURCE",
  "CAP_SYS_TIME",
  "CAP_SYS_TTY_CONFIG",
  "CAP_MKNOD",
  "CAP_LEASE",
  "CAP_AUDIT_WRITE",
  "CAP_AUDIT_CONTROL",
  "CAP_SETFCAP",
  "CAP_MAC_OVERRIDE",
  "CAP_MAC_ADMIN",
  "CAP_SYSLOG",
  "CAP_WAKE_ALARM",
  "CAP_BLOCK_SUSPEND",
  "CAP_AUDIT_READ",
  "CAP_PERFMON",
  "CAP_BPF",
  "CAP_CHECKPOINT_RESTORE",
] as const;

/** Docker's default capabilities: what a container's root keeps (moby's caps.DefaultCapabilities). */
export const DEFAULT_CAPABILITIES: readonly string[] = [
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_FSETID",
  "CAP_FOWNER",
  "CAP_MKNOD",
  "CAP_NET_RAW",
  "CAP_SETGID",
  "CAP_SETUID",
  "CAP_SETFCAP",
  "CAP_SETPCAP",
  "CAP_NET_BIND_SERVICE",
  "CAP_SYS_CHROOT",
  "CAP_KILL",
  "CAP_AUDIT_WRITE",
];

/** The highest capability this kernel knows (/proc/sys/kernel/cap_last_cap). */
export function lastCapability(): number {
  try {
    return Number(Deno.readTextFileSync("/proc/sys/kernel/cap_last_cap").trim());
  } catch {
    return CAPABILITIES.length - 1;
  }
}

/** The capabilities this kernel supports, by name. */
export function allCapabilities(): string[] {
  return CAPABILITIES.slice(0, Math.min(lastCapability(), CAPABILITIES.length - 1) + 1);
}

/**
 * The capabilities this process holds (its permitted set): a container can get no other, and
 * mini-docker may run without some (this machine's root has no CAP_SYS_RESOURCE, for one).
 */
export function heldCapabilities(): string[] {
  let mask = (1n << 64n) - 1n;
  try {
    const hex = /^CapPrm:\s*([0-9a-f]+)$/m.exec(Deno.readTextFileSync("/proc/self/status"))?.[1];
    if (hex !== undefined) mask = BigInt(`0x${hex}`);
  } catch { /* no /proc: assume all */ }
  return allCapabilities().filter((_, bit) => (mask >> BigInt(bit)) & 1n);
}

/** The bit number of a capability name ("CAP_SYS_ADMIN" -> 21), or undefined. */
export function capabilityNumber(name: string): number | undefined {
  const n = (CAPABILITIES as readonly string[]).indexOf(name);
  return n < 0 ? undefined : n;
}

/**
 * "net_admin", "NET_ADMIN" and "CAP_NET_ADMIN" all name CAP_NET_ADMIN; "ALL" stays "ALL". An
 * unknown name is a UserError naming it and the flag it came from.
 */
export function normalizeCapability(name: string, flag: string): string {
  const upper = name.trim().toUpperCase();
  if (upper === "ALL") return upper;
  const full = upper.startsWith("CAP_") ? upper : `CAP_${upper}`;
  const n = capabilityNumber(full);
  if (n === undefined) {
    throw new UserError(
      `Unknown capability "${name}" in ${flag}: use a name such as NET_ADMIN or CAP_NET_ADMIN, or ALL (see capabilities(7))`,
    );
  }
  if (n > lastCapability()) {
    throw new UserError(`Capability "${full}" in ${flag} is not supported by this kernel`);
  }
  return full;
}

/**
 * The capability set of a container, by Docker's rules: --privileged gives every capability;
 * --cap-add ALL gives every one but those dropped; --cap-drop ALL keeps only those added;
 * otherwise the defaults minus the dropped plus the added.
 */
export function containerCapabilities(
  opts: { add?: readonly string[]; drop?: readonly string[]; privileged?: boolean },
  held: readonly string[] = heldCapabilities(),
): string[] {
  // "All" is all that mini-docker holds itself.
  if (opts.privileged) return [...held];
  const add = (opts.add ?? []).map((c) => normalizeCapability(c, "--cap-add"));
  const drop = (opts.drop ?? []).map((c) => normalizeCapability(c, "--cap-drop"));
  for (const c of add) {
    if (c !== "ALL" && !held.includes(c)) {
      throw new UserError(
        `Cannot add capability ${c}: mini-docker does not hold it itself (see CapPrm in /proc/self/status)`,
      );
    }
  }
  let caps: string[];
  if (add.includes("ALL")) {
    caps = held.filter((c) => !drop.includes(c));
  } else if (drop.includes("ALL")) {
    caps = add;
  } else {
    caps = [...DEFAULT_CAPABILITIES.filter((c) => !drop.includes(c)), ...add];
  }
  return [...new Set(caps)].sort((a, b) => capabilityNumber(a)! - capabilityNumber(b)!);
}

/** A capability set as the kernel's 64-bit mask. */
export function capabilityMask(names: readonly string[]): bigint {
  let mask = 0n;
  for (const name of names) {
    const n = capabilityNumber(name);
    if (n === undefined) throw new UserError(`Unknown capability "${name}"`);
    mask |= 1n << BigInt(n);
  }
  return mask;
}
