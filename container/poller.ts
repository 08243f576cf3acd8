/**
 * Reading many descriptors with one blocking call: a supervisor copies every detached
 * container's output to its log, and Deno lends blocking calls a few threads only (about 30),
 * so one poll(2) at a time watches them all (see children.ts for the same reason).
 */
import * as libc from "../base/libc.ts";

interface Reader {
  onData(chunk: Uint8Array): void;
  onEnd(): void;
}

const readers = new Map<number, Reader>();
let wake: [number, number] | undefined;
let polling = false;

/** Copies what `fd` gives to `onData` until it ends; resolves then. */
export function readUntilEnd(fd: number, onData: (chunk: Uint8Array) => void): Promise<void> {
  libc.setNonblocking(fd);
  const ended = new Promise<void>((resolve) => readers.set(fd, { onData, onEnd: resolve }));
  wake ??= libc.pipe();
  // A poll already waiting must see the new descriptor: wake it.
  if (polling) libc.writeAll(wake[1], new Uint8Array([1]));
  loop();
  return ended;
}

async function loop(): Promise<void> {
  if (polling) return;
  polling = true;
  const buf = new Uint8Array(65536);
  try {
    while (readers.size > 0) {
      const fds = [...readers.keys()];
      const ready = await libc.pollReadable([wake![0], ...fds]);
      if (ready[0]) libc.readNow(wake![0], buf);
      fds.forEach((fd, i) => {
        if (!ready[i + 1]) return;
        const reader = readers.get(fd)!;
        for (;;) {
          const n = libc.readNow(fd, buf);
          if (n < 0) return; // nothing more for now
          if (n === 0) {
            readers.delete(fd);
            reader.onEnd();
            return;
          }
          reader.onData(buf.slice(0, n));
        }
      });
    }
  } finally {
    polling = false;
  }
}
