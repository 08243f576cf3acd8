/**
 * Container logs, in the CRI format that Kubernetes' kubelet reads: one record per line,
 * `<RFC 3339 time> <stdout|stderr> <F|P> <text>`, where P marks a partial line (output without
 * a newline yet) and F a full one. Each record is one append, so two streams interleave by line.
 */
import { readUntilEnd } from "./poller.ts";

const encoder = new TextEncoder();
const NL = 10;

export type Stream = "stdout" | "stderr";

/** Appends records to a container's log. */
export class LogWriter {
  #file: Deno.FsFile;
  constructor(path: string) {
    this.#file = Deno.openSync(path, { create: true, append: true, mode: 0o640 });
  }

  /** Writes one chunk of output as records: one F per full line, a P for the rest. */
  write(stream: Stream, chunk: Uint8Array): void {
    let start = 0;
    const parts: Uint8Array[] = [];
    while (start < chunk.length) {
      const nl = chunk.indexOf(NL, start);
      const end = nl < 0 ? chunk.length : nl;
      const tag = nl < 0 ? "P" : "F";
      parts.push(
        encoder.encode(`${new Date().toISOString()} ${stream} ${tag} `),
        chunk.subarray(start, end),
        Uint8Array.of(NL),
      );
      start = end + 1;
    }
    const total = parts.reduce((n, p) => n + p.length, 0);
    const record = new Uint8Array(total);
    let off = 0;
    for (const p of parts) {
      record.set(p, off);
      off += p.length;
    }
    this.#file.writeSync(record);
  }

  /** Copies a stream into the log until it ends. */
  async pump(stream: ReadableStream<Uint8Array>, name: Stream): Promise<void> {
    for await (const chunk of stream) this.write(name, chunk);
  }

  /** Copies a file descriptor (a pipe, a pty master) into the log until it ends (or EIO). */
  pumpFd(fd: number, name: Stream): Promise<void> {
    return readUntilEnd(fd, (chunk) => this.write(name, chunk));
  }

  close(): void {
    this.#file.close();
  }
}

/** One record of a log. */
export interface LogRecord {
  time: string;
  stream: Stream;
  partial: boolean;
  text: string;
}

/** Parses log text into records; a last line without newline (being written) is left out. */
export function parseLog(text: string): { records: LogRecord[]; rest: string } {
  const records: LogRecord[] = [];
  const lines = text.split("\n");
  const rest = lines.pop() ?? "";
  for (const line of lines) {
    const m = /^(\S+) (stdout|stderr) ([FP]) (.*)$/s.exec(line);
    if (m === null) continue;
    records.push({ time: m[1]!, stream: m[2] as Stream, partial: m[3] === "P", text: m[4]! });
  }
  return { records, rest };
}

/** Groups records into the lines the container wrote (partial records joined). */
export function toLines(
  records: LogRecord[],
): { time: string; stream: Stream; text: string; complete: boolean }[] {
  const out: { time: string; stream: Stream; text: string; complete: boolean }[] = [];
  const open = new Map<Stream, { time: string; stream: Stream; text: string; complete: boolean }>();
  for (const r of records) {
    let line = open.get(r.stream);
    if (line === undefined) {
      line = { time: r.time, stream: r.stream, text: "", complete: false };
      out.push(line);
    }
    line.text += r.text;
    if (r.partial) open.set(r.stream, line);
    else {
      line.complete = true;
      open.delete(r.stream);
    }
  }
  return out;
}
