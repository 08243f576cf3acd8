/**
 * Attaching to a detached container: its supervisor streams the container's output to a client
 * (`attach`, `start -a`) over the supervisor's socket, and the client's input to the container.
 *
 * After the supervisor's one-line JSON answer, the socket carries frames from the supervisor,
 * Docker's multiplexed-stream header (moby's stdcopy) with one more kind for the end:
 *
 * | byte 0                                  | bytes 1-3 | bytes 4-7            | then            |
 * |-----------------------------------------|-----------|----------------------|-----------------|
 * | 1 stdout, 2 stderr, 3 exit              | 0         | payload length (BE)  | the payload     |
 *
 * The exit frame's payload is the exit code as decimal text; the supervisor closes the socket
 * after it. The other way, the client writes its raw input, and half-closes at its end.
 */
import { UserError } from "../base/errors.ts";

export const STDOUT = 1;
export const STDERR = 2;
export const EXIT = 3;

/**
 * Reads a connection chunk by chunk, without `conn.readable`: that stream closes the whole
 * connection at the end of its input, and an attached client half-closes its side while the
 * container's output still has to come back.
 */
export class ConnReader {
  readonly #conn: Deno.Conn;
  readonly #buf = new Uint8Array(65536);

  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  /** The next chunk, or null at the end of input. */
  async read(): Promise<Uint8Array | null> {
    const n = await this.#conn.read(this.#buf);
    return n === null ? null : this.#buf.slice(0, n);
  }
}

/** Writes all of `data` (a socket may take part of it at a time). */
export async function writeAllTo(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  for (let off = 0; off < data.length;) off += await conn.write(data.subarray(off));
}

/** One frame: its header and payload in one buffer. */
export function encodeFrame(kind: number, payload: Uint8Array): Uint8Array<ArrayBuffer> {
  const frame = new Uint8Array(8 + payload.length);
  frame[0] = kind;
  new DataView(frame.buffer).setUint32(4, payload.length);
  frame.set(payload, 8);
  return frame;
}

/** Reads frames from chunks as they come (a frame may span chunks). */
export class FrameReader {
  #buffer = new Uint8Array(0);

  /** Adds a chunk; returns the frames it completed. */
  push(chunk: Uint8Array): { kind: number; payload: Uint8Array }[] {
    const joined = new Uint8Array(this.#buffer.length + chunk.length);
    joined.set(this.#buffer);
    joined.set(chunk, this.#buffer.length);
    const frames: { kind: number; payload: Uint8Array }[] = [];
    let at = 0;
    while (joined.length - at >= 8) {
      const length = new DataView(joined.buffer, at + 4, 4).getUint32(0);
      if (joined.length - at - 8 < length) break;
      frames.push({ kind: joined[at]!, payload: joined.slice(at + 8, at + 8 + length) });
      at += 8 + length;
    }
    this.#buffer = joined.slice(at);
    return frames;
  }
}

/** How a client attaches. */
export interface AttachClient {
  /** Send our stdin to the container. */
  stdin: boolean;
  /** The container has a terminal: ours goes raw while attached (when it is one). */
  tty: boolean;
  /** Called with SIGINT or SIGTERM received meanwhile (Docker's --sig-proxy). */
  onSignal?: (signal: Deno.Signal) => void;
}

/**
 * The client's side: copies frames to our stdout and stderr until the exit frame, and our stdin
 * to the connection. `first` holds what was read past the supervisor's answer. Returns the
 * container's exit code.
 */
export async function streamAttached(
  conn: Deno.UnixConn,
  reader: ConnReader,
  first: Uint8Array,
  client: AttachClient,
): Promise<number> {
  const raw = client.tty && client.stdin && Deno.stdin.isTerminal();
  if (raw) Deno.stdin.setRaw(true);
  const signals: [Deno.Signal, () => void][] = client.onSignal === undefined
    ? []
    : (["SIGINT", "SIGTERM"] as const).map((sig) => [sig, () => client.onSignal!(sig)]);
  for (const [sig, handler] of signals) Deno.addSignalListener(sig, handler);
  if (client.stdin) {
    // Our input until it ends, then half-closed (the container's output still comes). The
    // process exits with the container's code whether or not our input has ended.
    (async () => {
      for await (const chunk of Deno.stdin.readable) await writeAllTo(conn, chunk);
      await conn.closeWrite();
    })().catch(() => {});
  }
  try {
    const frames = new FrameReader();
    let pending = frames.push(first);
    for (;;) {
      for (const frame of pending) {
        if (frame.kind === EXIT) return Number(new TextDecoder().decode(frame.payload));
        const out = frame.kind === STDERR ? Deno.stderr : Deno.stdout;
        for (let off = 0; off < frame.payload.length;) {
          off += out.writeSync(frame.payload.subarray(off));
        }
      }
      const chunk = await reader.read();
      if (chunk === null) {
        throw new UserError(
          "The supervisor ended the connection before the container exited: see its log, supervisor/supervisor.log in the run root",
        );
      }
      pending = frames.push(chunk);
    }
  } finally {
    for (const [sig, handler] of signals) Deno.removeSignalListener(sig, handler);
    if (raw) Deno.stdin.setRaw(false);
  }
}
