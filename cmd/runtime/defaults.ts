/**
 * What `runtime spec` writes and `runtime features` prints: runc's default config.json (as runc
 * 1.1 writes it: a `sh` on a terminal in ./rootfs, read-only), and runc's features document
 * listing what mini-docker's runtime applies.
 */
import { CAPABILITIES } from "../../security/capabilities.ts";
import { MOUNT_OPTION_WORDS } from "../../container/mounts.ts";
import {
  SECCOMP_ACTIONS,
  SECCOMP_ARCHITECTURES,
  SECCOMP_OPERATORS,
} from "../../security/seccomp.ts";
import { VERSION } from "../../base/version.ts";

/** runc's default spec (`runc spec`, rootless off). */
export function defaultSpec(): unknown {
  return {
    "ociVersion": "1.0.2-dev",
    "process": {
      "terminal": true,
      "user": {
        "uid": 0,
        "gid": 0,
      },
      "args": [
        "sh",
      ],
      "env": [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "TERM=xterm",
      ],
      "cwd": "/",
      "capabilities": {
        "bounding": [
          "CAP_AUDIT_WRITE",
          "CAP_KILL",
          "CAP_NET_BIND_SERVICE",
        ],
        "effective": [
          "CAP_AUDIT_WRITE",
          "CAP_KILL",
          "CAP_NET_BIND_SERVICE",
        ],
        "permitted": [
          "CAP_AUDIT_WRITE",
          "CAP_KILL",
          "CAP_NET_BIND_SERVICE",
        ],
        "ambient": [
          "CAP_AUDIT_WRITE",
          "CAP_KILL",
          "CAP_NET_BIND_SERVICE",
        ],
      },
      "rlimits": [
        {
          "type": "RLIMIT_NOFILE",
          "hard": 1024,
          "soft": 1024,
        },
      ],
      "noNewPrivileges": true,
    },
    "root": {
      "path": "rootfs",
      "readonly": true,
    },
    "hostname": "runc",
    "mounts": [
      {
        "destination": "/proc",
        "type": "proc",
        "source": "proc",
      },
      {
        "destination": "/dev",
        "type": "tmpfs",
        "source": "tmpfs",
        "options": [
          "nosuid",
          "strictatime",
          "mode=755",
          "size=65536k",
        ],
      },
      {
        "destination": "/dev/pts",
        "type": "devpts",
        "source": "devpts",
        "options": [
          "nosuid",
          "noexec",
          "newinstance",
          "ptmxmode=0666",
          "mode=0620",
          "gid=5",
        ],
      },
      {
        "destination": "/dev/shm",
        "type": "tmpfs",
        "source": "shm",
        "options": [
          "nosuid",
          "noexec",
          "nodev",
          "mode=1777",
          "size=65536k",
        ],
      },
      {
        "destination": "/dev/mqueue",
        "type": "mqueue",
        "source": "mqueue",
        "options": [
          "nosuid",
          "noexec",
          "nodev",
        ],
      },
      {
        "destination": "/sys",
        "type": "sysfs",
        "source": "sysfs",
        "options": [
          "nosuid",
          "noexec",
          "nodev",
          "ro",
        ],
      },
      {
        "destination": "/sys/fs/cgroup",
        "type": "cgroup",
        "source": "cgroup",
        "options": [
          "nosuid",
          "noexec",
          "nodev",
          "relatime",
          "ro",
        ],
      },
    ],
    "linux": {
      "resources": {
        "devices": [
          {
            "allow": false,
            "access": "rwm",
          },
        ],
      },
      "namespaces": [
        {
          "type": "pid",
        },
        {
          "type": "network",
        },
        {
          "type": "ipc",
        },
        {
          "type": "uts",
        },
        {
          "type": "mount",
        },
      ],
      "maskedPaths": [
        "/proc/acpi",
        "/proc/asound",
        "/proc/kcore",
        "/proc/keys",
        "/proc/latency_stats",
        "/proc/timer_list",
        "/proc/timer_stats",
        "/proc/sched_debug",
        "/sys/firmware",
        "/proc/scsi",
      ],
      "readonlyPaths": [
        "/proc/bus",
        "/proc/fs",
        "/proc/irq",
        "/proc/sys",
        "/proc/sysrq-trigger",
      ],
    },
  };
}

/**
 * runc's `features` document (opencontainers/runtime-spec features.md), with what mini-docker
 * applies: the hooks run in the runtime's namespaces, its mount option words, the namespaces it creates or joins, every
 * capability it knows, cgroup v1 and v2 without systemd, seccomp without notify, no AppArmor or
 * SELinux.
 */
export function features(): unknown {
  return {
    ociVersionMin: "1.0.0",
    ociVersionMax: "1.0.2",
    hooks: ["prestart", "createRuntime", "poststart", "poststop"],
    mountOptions: MOUNT_OPTION_WORDS,
    linux: {
      namespaces: ["cgroup", "ipc", "mount", "network", "pid", "uts"],
      capabilities: [...CAPABILITIES],
      cgroup: { v1: true, v2: true, systemd: false, systemdUser: false },
      seccomp: {
        enabled: true,
        actions: SECCOMP_ACTIONS.filter((a) => a !== "SCMP_ACT_NOTIFY"),
        operators: [...SECCOMP_OPERATORS],
        archs: [...SECCOMP_ARCHITECTURES],
      },
      apparmor: { enabled: false },
      selinux: { enabled: false },
    },
    annotations: { "org.mini-docker.version": VERSION },
  };
}
