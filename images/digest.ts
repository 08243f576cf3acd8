/** Content digests (`sha256:<hex>`), computed while bytes stream past. */

import { createHash, type Hash } from "node:crypto";

const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

/** True for `sha256:<64 hex>`, the only algorithm we accept (the one every registry uses). */
export function isDigest(value: unknown): value is string {
  return typeof value === "string" && DIGEST_RE.test(value);
}

/** The hex part of a `sha256:<hex>` digest. */
export function digestHex(digest: string): string {
  return digest.slice("sha256:".length);
}

/** The 12 hex digits Docker shows for an image or a layer. */
export function shortId(digest: string): string {
  return digestHex(digest).slice(0, 12);
}

/** sha256 of a byte array, as `sha256:<hex>`. */
export function sha256Digest(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

/**
 * A pass-through stream that hashes and counts what flows through it. `digest()` is valid once
 * the stream has ended; `onBytes` sees the running total (for progress bars).
 */
export class DigestTap {
  readonly stream: TransformStream<Uint8Array, Uint8Array>;
  #hash: Hash = createHash("sha256");
  #bytes = 0;
  #digest: string | undefined;

  constructor(onBytes?: (total: number) => void) {
    this.stream = new TransformStream({
      transform: (chunk, controller) => {
        this.#hash.update(chunk);
        this.#bytes += chunk.byteLength;
        onBytes?.(this.#bytes);
        controller.enqueue(chunk);
      },
      flush: () => {
        this.#digest = `sha256:${this.#hash.digest("hex")}`;
      },
    });
  }

  /** Bytes seen so far. */
  get bytes(): number {
    return this.#bytes;
  }

  /** The digest of everything that went through; throws if the stream has not ended. */
  digest(): string {
    if (this.#digest === undefined) throw new Error("DigestTap: stream has not ended");
    return this.#digest;
  }
}
