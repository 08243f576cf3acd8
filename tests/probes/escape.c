/*
 * Escape probes for tests/security_test.ts, compiled (static) by the test and run inside a
 * container. Each probe tries one thing a container must not be able to do, harmlessly (read a
 * marker, open for writing without writing), and prints one line: "<name> ok" when the kernel
 * let it through, "<name> <errno name>" when it refused.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/keyctl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

static void report(const char *name, long rc) {
  if (rc >= 0) printf("%s ok\n", name);
  else printf("%s %s\n", name, strerrorname_np(errno));
}

/* Shocker (2014): a handle for the filesystem's root inode, opened through any file of the
 * host's filesystem that is bind-mounted into the container (here /etc/hosts). */
static void shocker(void) {
  struct { struct file_handle h; unsigned char bytes[128]; } fh;
  int mount_id;
  fh.h.handle_bytes = 128;
  if (syscall(SYS_name_to_handle_at, AT_FDCWD, "/etc/hosts", &fh.h, &mount_id, 0) < 0) {
    report("name_to_handle_at", -1);
  }
  int fd = open("/etc/hosts", O_RDONLY);
  /* ext4's root directory is inode 2, generation 0: the classic brute-forced handle. */
  struct { struct file_handle h; unsigned int ino, gen; } root = {
    .h = { .handle_bytes = 8, .handle_type = 1 }, .ino = 2, .gen = 0 };
  report("open_by_handle_at", syscall(SYS_open_by_handle_at, fd, &root.h, O_RDONLY));
}

int main(int argc, char **argv) {
  const char *what = argc > 1 ? argv[1] : "all";
  if (!strcmp(what, "keyring")) {
    long id = syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0);
    if (id < 0) report("keyctl", -1); else printf("session %ld\n", id);
    return 0;
  }
  if (!strcmp(what, "read") && argc > 2) {
    /* Opens a path for reading and reads a byte: a device made with mknod, a host path. */
    int fd = open(argv[2], O_RDONLY);
    char c;
    report("open", fd);
    if (fd >= 0) report("read", read(fd, &c, 1));
    return 0;
  }
  if (!strcmp(what, "write") && argc > 2) {
    report("open-for-write", open(argv[2], O_WRONLY));
    return 0;
  }
  shocker();
  report("unshare-user", unshare(CLONE_NEWUSER));
  report("unshare-mount", unshare(CLONE_NEWNS));
  report("mount-proc", mount("proc", "/mnt", "proc", 0, NULL));
  report("mount-cgroup", mount("cgroup", "/mnt", "cgroup", 0, "memory"));
  report("mknod-block", mknod("/tmp/probe-sda", S_IFBLK | 0600, makedev(8, 0)));
  int fd = open("/tmp/probe-sda", O_RDONLY);
  report("open-block", fd);
  report("kmsg", open("/dev/kmsg", O_RDONLY));
  char buf[64];
  report("syslog", syscall(SYS_syslog, 3 /* SYSLOG_ACTION_READ_ALL */, buf, sizeof buf));
  report("keyctl", syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_KEYRING, 0));
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.map_type = BPF_MAP_TYPE_ARRAY;
  attr.key_size = 4;
  attr.value_size = 4;
  attr.max_entries = 1;
  report("bpf", syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof attr));
  report("sethostname", sethostname("probe", 5));
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  report("clock_settime", clock_settime(CLOCK_REALTIME, &now));
  report("reboot", reboot(RB_ENABLE_CAD));
  report("init_module", syscall(SYS_init_module, NULL, 0, ""));
  report("perf_event_open", syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0));
  report("core_pattern", open("/proc/sys/kernel/core_pattern", O_WRONLY));
  report("sysrq", open("/proc/sysrq-trigger", O_WRONLY));
  report("remount-proc-sys", mount(NULL, "/proc/sys", NULL, MS_REMOUNT | MS_BIND, NULL));
  report("ptrace-pid1", syscall(SYS_ptrace, 16 /* PTRACE_ATTACH */, 1, 0, 0));
  return 0;
}
