/** Pseudo-terminals for `run -t` and `exec -t`. */
import * as libc from "./libc.ts";

/**
 * A pseudo-terminal whose slave the container gets and whose master is relayed to our own
 * stdin and stdout: our terminal goes into raw mode (restored on dispose, whatever happened),
 * and its size is copied at start and on every SIGWINCH.
 */
export function openRelay() {
  const { master, slave } = libc.openPty();
  const stdinIsTty = Deno.stdin.isTerminal();
  const resize = () => {
    const size = libc.getWindowSize(0) ?? libc.getWindowSize(1);
    if (size !== undefined) libc.setWindowSize(master, size);
  };
  resize();
  Deno.addSignalListener("SIGWINCH", resize);
  if (stdinIsTty) Deno.stdin.setRaw(true);
  return {
    slave,
    /** Copies the container's output to ours until its terminal closes; input the other way. */
    async relay(): Promise<void> {
      (async () => {
        for await (const chunk of Deno.stdin.readable) libc.writeAll(master, new Uint8Array(chunk));
      })().catch(() => {});
      const buf = new Uint8Array(16384);
      for (;;) {
        const n = await libc.readAsync(master, buf);
        if (n <= 0) return; // EIO: every process holding the slave has exited.
        for (let off = 0; off < n;) off += Deno.stdout.writeSync(buf.subarray(off, n));
      }
    },
    [Symbol.dispose]() {
      Deno.removeSignalListener("SIGWINCH", resize);
      if (stdinIsTty) Deno.stdin.setRaw(false);
      libc.close(master);
    },
  };
}
