/**
 * Where mini-docker keeps things. Runtime state (gone at reboot) lives under the run root,
 * persistent data (images, container layers) under the data root; both are overridable for
 * tests and for users without /var/lib: `--runroot`/`MINI_DOCKER_RUNROOT` and
 * `--root`/`MINI_DOCKER_ROOT` (the same names as Podman's flags).
 */

/** Runtime state: one directory per container, locks, sync sockets. */
export function runRoot(): string {
  return Deno.env.get("MINI_DOCKER_RUNROOT") || "/run/mini-docker";
}

/** Persistent data: images, layers, containers' writable layers. */
export function dataRoot(): string {
  return Deno.env.get("MINI_DOCKER_ROOT") || "/var/lib/mini-docker";
}

/** Name of the cgroup under which every container's cgroup is created. */
export function cgroupParent(): string {
  return Deno.env.get("MINI_DOCKER_CGROUP_PARENT") || "mini-docker";
}

/**
 * `path` made absolute against the working directory and normalized (".", ".." and repeated
 * slashes resolved lexically, symlinks left alone), as node:path's `resolve` does; without
 * node:path, whose Node compatibility layer costs every `run` milliseconds to load.
 */
export function absolutePath(path: string): string {
  const parts: string[] = [];
  for (const part of (path.startsWith("/") ? path : `${Deno.cwd()}/${path}`).split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") parts.pop();
    else parts.push(part);
  }
  return `/${parts.join("/")}`;
}

/** Whether `path` exists (following symlinks). */
export function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * The bytes of the regular files under `dir` (hard links counted once; symbolic links and
 * special files as their own size), as Docker sizes a container's writable layer. 0 when it
 * does not exist.
 */
export function diskUsage(dir: string): number {
  const seen = new Set<number>();
  let total = 0;
  const walk = (path: string) => {
    let entries: Deno.DirEntry[];
    try {
      entries = [...Deno.readDirSync(path)];
    } catch {
      return;
    }
    for (const e of entries) {
      const child = `${path}/${e.name}`;
      let st: Deno.FileInfo;
      try {
        st = Deno.lstatSync(child);
      } catch {
        continue;
      }
      if (st.isDirectory) {
        walk(child);
        continue;
      }
      if (st.ino !== null && (st.nlink ?? 1) > 1) {
        if (seen.has(st.ino)) continue;
        seen.add(st.ino);
      }
      total += st.size;
    }
  };
  walk(dir);
  return total;
}
