/** Pseudo-terminals for `run -t` and `exec -t`. */
import * as libc from "../base/libc.ts";

/**
 * Relays a container's pseudo-terminal to our own stdin and stdout. The terminal itself is
 * opened inside the container (so that its name resolves there) and its master handed to us
 * (`attach`). Our terminal goes into raw mode at once (restored on dispose, whatever
 * happened), and its size is copied to the container's at attach and on every SIGWINCH.
 * Without `input`, our stdin is not read (Docker's `-t` without `-i`).
 */
export function openRelay(opts: { input?: boolean } = {}) {
  let master: number | undefined;
  const input = opts.input ?? true;
  const stdinIsTty = input && Deno.stdin.isTerminal();
  const resize = () => {
    const size = libc.getWindowSize(0) ?? libc.getWindowSize(1);
    if (size !== undefined && master !== undefined) libc.setWindowSize(master, size);
  };
  Deno.addSignalListener("SIGWINCH", resize);
  if (stdinIsTty) Deno.stdin.setRaw(true);
  return {
    /** Takes the container's terminal (before its command starts: sized like ours). */
    attach(fd: number) {
      master = fd;
      resize();
    },
    /** Copies the container's output to ours until its terminal closes; input the other way. */
    async relay(): Promise<void> {
      const fd = master;
      if (fd === undefined) return;
      if (input) {
        (async () => {
          for await (const chunk of Deno.stdin.readable) libc.writeAll(fd, new Uint8Array(chunk));
        })().catch(() => {});
      }
      const buf = new Uint8Array(16384);
      for (;;) {
        const n = await libc.readAsync(fd, buf);
        if (n <= 0) return; // EIO: every process holding the slave has exited.
        for (let off = 0; off < n;) off += Deno.stdout.writeSync(buf.subarray(off, n));
      }
    },
    [Symbol.dispose]() {
      Deno.removeSignalListener("SIGWINCH", resize);
      if (stdinIsTty) Deno.stdin.setRaw(false);
      if (master !== undefined) libc.close(master);
    },
  };
}
