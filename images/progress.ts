/**
 * Pull progress: on a terminal one live line per layer with a bar (redrawn in place on stderr),
 * otherwise plain lines as layers start and finish, the way `docker pull` does.
 */

/** Receives what a pull is doing. */
export interface Progress {
  /** A line of its own: "Pulling from library/alpine", "Digest: sha256:...". */
  status(line: string): void;
  /** A layer's state: "Pulling fs layer", "Already exists", "Pull complete". */
  layer(id: string, text: string): void;
  /** Bytes of a layer received (or sent: `action` "Pushing") so far; drawn only on a terminal. */
  bytes(id: string, current: number, total: number, action?: string): void;
  /** Draws the final state; call once at the end. */
  close(): void;
}

/** Bars on stderr when it is a terminal, else plain lines through `log` (default: stderr). */
export function createProgress(log?: (line: string) => void): Progress {
  if (Deno.stderr.isTerminal()) return new TerminalProgress();
  return new PlainProgress(log ?? ((line) => console.error(line)));
}

/** Decimal units with three significant digits, like Docker: `7.8MB`, `123kB`, `512B`. */
export function formatSize(bytes: number, precision = 3): string {
  const units = ["B", "kB", "MB", "GB", "TB", "PB"];
  let value = bytes;
  let i = 0;
  while (value >= 1000 && i < units.length - 1) {
    value /= 1000;
    i++;
  }
  return `${Number(value.toPrecision(precision))}${units[i]}`;
}

class PlainProgress implements Progress {
  #log: (line: string) => void;
  constructor(log: (line: string) => void) {
    this.#log = log;
  }
  status(line: string): void {
    this.#log(line);
  }
  layer(id: string, text: string): void {
    this.#log(`${id}: ${text}`);
  }
  bytes(): void {}
  close(): void {}
}

const BAR_WIDTH = 40;

class TerminalProgress implements Progress {
  #lines = new Map<string, string>();
  #drawn = 0;
  #lastDraw = 0;
  #encoder = new TextEncoder();

  status(line: string): void {
    this.#draw(true);
    // Layers drawn so far stay where they are; new ones go below this line.
    this.#lines.clear();
    this.#drawn = 0;
    this.#write(`${line}\n`);
  }

  layer(id: string, text: string): void {
    this.#lines.set(id, `${id}: ${text}`);
    this.#draw(true);
  }

  bytes(id: string, current: number, total: number, action = "Downloading"): void {
    const fraction = total > 0 ? Math.min(current / total, 1) : 0;
    const filled = Math.floor(fraction * BAR_WIDTH);
    const bar = "=".repeat(filled) + (filled < BAR_WIDTH ? ">" : "") +
      " ".repeat(Math.max(0, BAR_WIDTH - filled - 1));
    const sizes = `${formatSize(current, 4)}/${formatSize(total, 4)}`;
    this.#lines.set(id, `${id}: ${action} [${bar}] ${sizes}`);
    this.#draw(false);
  }

  close(): void {
    this.#draw(true);
  }

  #draw(force: boolean): void {
    const now = performance.now();
    if (!force && now - this.#lastDraw < 100) return;
    this.#lastDraw = now;
    let out = this.#drawn > 0 ? `\x1b[${this.#drawn}A` : "";
    for (const line of this.#lines.values()) out += `\x1b[2K${line}\n`;
    this.#drawn = this.#lines.size;
    this.#write(out);
  }

  #write(text: string): void {
    const bytes = this.#encoder.encode(text);
    for (let off = 0; off < bytes.byteLength;) off += Deno.stderr.writeSync(bytes.subarray(off));
  }
}
