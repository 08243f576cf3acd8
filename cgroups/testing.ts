/**
 * What the cgroup tests share for device rules (not a test file itself, and no product code
 * imports it): Docker's effective default rules as an example policy, and a probe that runs a
 * shell inside a cgroup and reports what the kernel let it do.
 */
import type { LinuxDeviceCgroup } from "../base/spec.ts";

const char = (major: number, minor?: number): LinuxDeviceCgroup => ({
  allow: true,
  type: "c",
  major,
  ...(minor === undefined ? {} : { minor }),
  access: "rwm",
});

/**
 * Docker's effective default for an unprivileged container: deny all; mknod of any node;
 * null, zero, full, random, urandom, tty, console, ptmx, the pts range and tun; deny fuse.
 */
export const DOCKER_DEFAULT_RULES: LinuxDeviceCgroup[] = [
  { allow: false, access: "rwm" },
  { allow: true, type: "c", access: "m" },
  { allow: true, type: "b", access: "m" },
  char(1, 3),
  char(1, 5),
  char(1, 7),
  char(1, 8),
  char(1, 9),
  char(5, 0),
  char(5, 1),
  char(5, 2),
  char(136),
  char(10, 200),
  { allow: false, type: "c", major: 10, minor: 229, access: "rwm" },
];

/** One thing the probe tries inside the cgroup. */
export type Probe =
  | { read: string }
  | { write: string }
  | { readWrite: string }
  | { mknod: string; type: "c" | "b"; major: number; minor: number };

/**
 * Runs `sh` that first moves itself into the cgroup (its PID to each of `procsFiles`, as the
 * engine moves a container's first process) and then tries each probe in turn. Each result is "ok" or the
 * kernel's reason, such as "Operation not permitted" (what a device rule's denial gives).
 * Opening for read or write reads and writes nothing: only the open is checked.
 */
export async function probeDevices(
  procsFiles: readonly string[],
  probes: readonly Probe[],
): Promise<string[]> {
  const q = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;
  const lines = probes.map((probe) => {
    if ("read" in probe) return `try head -c 0 ${q(probe.read)}`;
    if ("write" in probe) return `try sh -c ': >> "$1"' - ${q(probe.write)}`;
    if ("readWrite" in probe) return `try sh -c ': <> "$1"' - ${q(probe.readWrite)}`;
    return `try mknod ${q(probe.mknod)} ${probe.type} ${probe.major} ${probe.minor}`;
  });
  const script = [
    // The last line of a failure is "...: <strerror>".
    `try() { if out=$("$@" 2>&1); then echo ok; else echo "$out" | tail -n 1 | sed 's/.*: //'; fi; }`,
    ...procsFiles.map((file) => `echo $$ > ${q(file)} || exit 99`),
    ...lines,
  ].join("\n");
  const out = await new Deno.Command("sh", {
    args: ["-c", script],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`Probe shell failed: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
  return new TextDecoder().decode(out.stdout).trimEnd().split("\n");
}

/**
 * What the device rules decided for one probe's result: EPERM is their denial; "ok", and the
 * errors of a node whose driver is absent (a kernel without /dev/mem, pts number 4000), mean
 * the open got past them. Anything else is unexpected and stays as it is, to fail the test.
 */
export function deviceVerdict(result: string): string {
  if (result === "Operation not permitted") return "denied";
  if (["ok", "No such device or address", "Input/output error"].includes(result)) return "allowed";
  return result;
}

/** Makes a device node for the probes to open (from outside the cgroup: nothing limits it). */
export function mknodOutside(path: string, type: "c" | "b", major: number, minor: number): void {
  const out = new Deno.Command("mknod", {
    args: [path, type, String(major), String(minor)],
    stdout: "null",
    stderr: "piped",
  }).outputSync();
  if (!out.success) {
    throw new Error(`Cannot mknod "${path}": ${new TextDecoder().decode(out.stderr).trim()}`);
  }
}
