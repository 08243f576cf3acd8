/**
 * The container's /proc. A procfs shows the PID namespace of the process that mounts it (or,
 * since Linux 6.18, the one it names), and no process of the container's namespace exists
 * before its first one, which cannot mount anything: so the container's thread binds a host
 * directory as /proc (mounts.ts), and the parent mounts the procfs there, with Docker's masked
 * and read-only paths, once the first process waits at its gate. Mount propagation carries it
 * into the container; then the link is cut and the host's side unmounted.
 */
import type { ContainerSpec } from "../base/spec.ts";
import * as libc from "../base/libc.ts";
import { UserError } from "../base/errors.ts";
import { exists, runRoot } from "../base/paths.ts";
import { childExit } from "./children.ts";
import { quiet } from "./cgroupns.ts";
import { linux } from "./kernel.ts";
import { makeReadonly, mask, type ProcPeer, PROPAGATION } from "./mounts.ts";
import { ownerTag } from "./state.ts";
import type { OrderReply, OrderRequest } from "./order_thread.ts";

/**
 * The host directory that becomes the container's /proc (mounts.ts ProcPeer): `dir`, inside a
 * shared mount of its own (`root`), so that the propagation can be cut from the host's side
 * (by making `root` private) before anything is unmounted there.
 */
export function prepareProc(id: string): ProcPeer {
  // Named after this process too: a clean-up removes it once this process is gone (see
  // lifecycle.ts), never while it lives.
  const root = `${runRoot()}/proc/${ownerTag()}-${id.slice(0, 16)}`;
  const dir = `${root}/proc`;
  Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
  libc.mount(root, root, "", libc.MS_BIND);
  libc.mount("", root, "", libc.MS_SHARED);
  return { root, dir };
}

let namesPidns: boolean | undefined;

/**
 * Mounts the container's /proc on the host's side of its peer directory, once its first
 * process (PID 1 of its namespace) waits at the gate. Linux 6.18 takes the namespace as a mount
 * option; before, a procfs shows the namespace of the process that mounts it, so a process of the
 * container's namespace does it: mount(8), spawned from this thread into that namespace (PID 2
 * for the moment it lives). Docker's masked and read-only /proc paths are made there too, each
 * in one step, and everything reaches the container's /proc by propagation, which is then cut
 * before the host's side is unmounted.
 */
export async function fillProc(
  pid: number,
  proc: ProcPeer,
  spec: ContainerSpec,
  inOrder = false,
  order?: Worker,
): Promise<void> {
  if (!spec.linux.namespaces.some((ns) => ns.type === "mount")) {
    // No mount namespace: the thread mounted the procfs in place (mounts.ts ProcPeer.direct).
    releaseProc(proc);
    return;
  }
  if (spec.linux.namespaces.some((ns) => ns.type === "mount" && ns.path !== undefined)) {
    // A mount namespace joined by path (the OCI runtime's) was made without the host's side of
    // the peer directory, so nothing mounted there reaches it: the procfs is mounted from inside.
    releaseProc(proc);
    await mountsInOrder(pid, spec, true, order);
    return;
  }
  const dir = proc.dir;
  const options = "nosuid,nodev,noexec";
  namesPidns ??= Deno.env.get("MINI_DOCKER_PROC") !== "helper" && libc.procTakesPidns();
  if (namesPidns) {
    try {
      libc.mount("proc", dir, "proc", MS_PROC, `pidns=/proc/${pid}/ns/pid`);
    } catch (err) {
      throw new UserError(`Cannot mount /proc for the container: ${(err as Error).message}`);
    }
  } else {
    await mountProcFromInside(pid, dir, options);
  }
  const inProc = (path: string) => path.startsWith("/proc/");
  const at = (path: string) => `${dir}${path.slice("/proc".length)}`;
  try {
    for (const path of spec.linux.maskedPaths.filter(inProc)) mask(linux, at(path));
    for (const path of spec.linux.readonlyPaths.filter(inProc)) makeReadonly(linux, at(path));
  } catch (err) {
    throw new UserError(`Cannot hide /proc paths from the container: ${(err as Error).message}`);
  }
  releaseProc(proc);
  if (inOrder) await mountsInOrder(pid, spec, false, order);
}

/**
 * The mounts made after the container's /proc in its config, made again after its procfs (the
 * OCI runtime spec's "in the listed order", which the runtime mode keeps): the procfs appears in
 * the container's mount table when it is mounted here, after every mount the thread made, so the
 * mounts that follow /proc there (its /dev, /sys, ... and what is below them) are replaced by
 * copies of themselves, made now (order_thread.ts), which then sets the root's propagation.
 * With `mountProcfs` (a joined mount namespace), that thread mounts the procfs (Linux 6.18's
 * `pidns`) and hides its masked and read-only paths first.
 */
async function mountsInOrder(
  pid: number,
  spec: ContainerSpec,
  mountProcfs: boolean,
  started?: Worker,
): Promise<void> {
  const table = mountTable(Deno.readTextFileSync(`/proc/${pid}/mountinfo`));
  const procfs = mountProcfs
    ? table.length
    : table.findLastIndex((m) => m.point === "/proc" && m.type === "proc");
  const placeholder = table.findIndex((m) => m.point === "/proc");
  if (procfs < 0 || placeholder < 0 || placeholder >= procfs) {
    if (mountProcfs) throw new UserError("Cannot mount /proc for the container: no /proc mount");
    return;
  }
  const after = table.slice(placeholder + 1, procfs)
    .filter((m) => m.point !== "/proc" && !m.point.startsWith("/proc/"));
  const ids = new Set(after.map((m) => m.id));
  // The topmost of them: a copy takes what is mounted below it along.
  const points = after.filter((m) => !ids.has(m.parent)).map((m) => m.point);
  const unbindable = after.filter((m) => m.optional.includes("unbindable")).map((m) => m.point);
  const [type, recursive] = PROPAGATION[spec.linux.rootfsPropagation ?? ""] ?? [];
  const propagation = type === undefined ? undefined : type | (recursive ? libc.MS_REC : 0);
  const inProc = (path: string) => path.startsWith("/proc/");
  const hide = mountProcfs
    ? {
      masked: spec.linux.maskedPaths.filter(inProc),
      readonly: spec.linux.readonlyPaths.filter(inProc),
    }
    : undefined;
  if (points.length === 0 && propagation === undefined && hide === undefined) return;
  const worker = started ?? startOrderThread();
  try {
    const reply = await new Promise<OrderReply>((resolve) => {
      worker.onmessage = (event: MessageEvent<OrderReply>) => resolve(event.data);
      worker.onerror = (event) => {
        event.preventDefault();
        resolve({ ok: false, message: event.message });
      };
      worker.postMessage(
        { pid, procfs: hide, points, unbindable, propagation } satisfies OrderRequest,
      );
    });
    if (!reply.ok) {
      throw new UserError(`Cannot mount the container's mounts in order: ${reply.message}`);
    }
  } finally {
    worker.terminate();
  }
}

/**
 * The thread that puts a container's mounts in order at its gate (order_thread.ts). The OCI
 * runtime's starts make it ahead, while the container's thread prepares (a Worker's creation
 * blocks its caller about 9 ms and it boots for a few more): then the gate does not wait for
 * it. Terminate it when done (mountsInOrder does, when it used it).
 */
export function startOrderThread(): Worker {
  return new Worker(new URL("./order_thread.ts", import.meta.url).href, { type: "module" });
}

/**
 * /proc/PID/mountinfo's lines: mount id, parent id, mount point (unescaped), optional fields
 * ("shared:N", "unbindable", ...), type.
 */
export function mountTable(
  text: string,
): { id: number; parent: number; point: string; optional: string[]; type: string }[] {
  return text.split("\n").filter((line) => line !== "").map((line) => {
    const fields = line.split(" ");
    const dash = fields.indexOf("-");
    return {
      id: Number(fields[0]),
      parent: Number(fields[1]),
      point: (fields[4] ?? "").replace(
        /\\([0-7]{3})/g,
        (_, o) => String.fromCharCode(parseInt(o, 8)),
      ),
      optional: fields.slice(6, dash),
      type: fields[dash + 1] ?? "",
    };
  });
}

const MS_PROC = libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC;

/** mount(8) as PID 2 of the container's namespace, mounting its procfs on `dir`. */
async function mountProcFromInside(pid: number, dir: string, options: string): Promise<void> {
  // Never while mini-docker is in a container's cgroup (cgroupns.ts).
  await quiet();
  const self = libc.open("/proc/thread-self/ns/pid", libc.O_RDONLY | libc.O_CLOEXEC);
  const target = libc.open(`/proc/${pid}/ns/pid`, libc.O_RDONLY | libc.O_CLOEXEC);
  let helper: number;
  try {
    libc.setns(target, libc.CLONE_NEWPID);
    try {
      helper = libc.spawn(
        mountProgram(),
        ["mount", "-n", "-t", "proc", "-o", options, "proc", dir],
        ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],
        { actions: [{ closefrom: 3 }] },
      );
    } finally {
      libc.setns(self, libc.CLONE_NEWPID);
    }
  } finally {
    libc.close(target);
    libc.close(self);
  }
  const status = await childExit(helper);
  if (!status.success) {
    throw new UserError(`Cannot mount /proc for the container: mount exited with ${status.code}`);
  }
}

/**
 * Cuts the container's /proc from the host's peer directory and unmounts the host's side. An
 * unmount propagates along its parent's peer group: `root` is made private first.
 */
export function releaseProc(proc: ProcPeer): void {
  try {
    libc.mount("", proc.root, "", libc.MS_PRIVATE);
  } catch {
    return; // not mounted (any more)
  }
  for (const path of [proc.dir, proc.root]) {
    try {
      libc.mount("", path, "", libc.MS_REC | libc.MS_PRIVATE);
      libc.umount2(path, libc.MNT_DETACH);
    } catch { /* nothing mounted there */ }
  }
}

/**
 * Removes the peer directory, once the container has ended: removing a directory detaches what
 * is mounted on it in every mount namespace, the container's /proc included.
 */
export function removeProcDir(proc: ProcPeer): void {
  try {
    Deno.removeSync(proc.root, { recursive: true });
  } catch { /* gone */ }
}

let mountPath: string | undefined;
function mountProgram(): string {
  mountPath ??= ["/usr/bin/mount", "/bin/mount", "/usr/sbin/mount", "/sbin/mount"].find(exists);
  if (mountPath === undefined) {
    throw new UserError(
      "Cannot find mount(8), which Linux before 6.18 needs to give a container its /proc: install util-linux",
    );
  }
  return mountPath;
}
