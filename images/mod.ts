/**
 * Images: pull from OCI registries, import root filesystem tarballs, keep unpacked layers for
 * overlayfs. What `run` needs is `resolveImage` (an image's layer dirs and runtime defaults) and
 * `lookupUser`; the commands use the rest. This floor imports only base/: what it needs to know
 * about containers (which of them use an image) its callers pass in.
 */

import { UserError } from "../base/errors.ts";
import { findImage } from "./catalog.ts";
import { parseImageConfig, type RuntimeConfig } from "./config.ts";
import { createProgress } from "./progress.ts";
import { pullImage } from "./pull.ts";
import { formatReference, parseReference } from "./reference.ts";
import { ImageStore } from "./store.ts";

export { lookupUser } from "./user.ts";
export type { ExecUser } from "./user.ts";
export type { RuntimeConfig } from "./config.ts";
export { pullImage } from "./pull.ts";
export type { PullOptions, PullResult } from "./pull.ts";
export { importTarball } from "./import.ts";
export { findImage, listImages, removeImages } from "./catalog.ts";
export type { ImageRow, ImageUsers } from "./catalog.ts";
export { formatReference, parseReference } from "./reference.ts";
export { ImageStore } from "./store.ts";
export type { ImageRecord } from "./store.ts";

/** An image ready to be mounted. */
export interface ResolvedImage {
  /** Image id: `sha256:<hex>` of its config. */
  id: string;
  /** The name it was found by, normalised (`docker.io/library/alpine:latest`), or the id. */
  ref: string;
  /** Unpacked layer dirs, top-most first: overlayfs `lowerdir` order. */
  layers: string[];
  /** Env, WorkingDir, Entrypoint, Cmd and User from the image config. */
  config: RuntimeConfig;
}

/** How `resolveImage` may get an image that is not in the store. */
export interface ResolveOptions {
  /** `missing` (default) pulls when absent; `never` fails instead. */
  pull?: "missing" | "never";
  /** Plain HTTP to a non-loopback registry. */
  insecure?: boolean;
  /** Status lines of a pull (when stderr is not a terminal); default: stderr. */
  log?: (line: string) => void;
}

/** Finds an image by name, digest or id, pulling it if it is missing (unless told not to). */
export async function resolveImage(ref: string, opts: ResolveOptions = {}): Promise<ResolvedImage> {
  const store = new ImageStore();
  let found = findImage(store.readIndex(), ref);
  let name = ref;
  if (found === null) {
    const parsed = parseReference(ref);
    name = formatReference(parsed);
    if (opts.pull === "never") throw new UserError(`No such image "${name}"`);
    const log = opts.log ?? ((line: string) => console.error(line));
    log(`Unable to find image "${name}" locally`);
    const result = await pullImage(ref, { insecure: opts.insecure, progress: createProgress(log) });
    found = { record: result.record, match: { kind: "id" } };
  } else if (found.match.kind !== "id") {
    name = formatReference(parseReference(ref));
  }
  const { record } = found;
  const damaged = (what: string) =>
    new UserError(`Image "${name}" is damaged: ${what}; remove it and pull it again`);
  let configBytes: Uint8Array | null;
  try {
    configBytes = store.readBlob(record.id);
  } catch (err) {
    throw damaged(err instanceof Error ? err.message : String(err));
  }
  if (configBytes === null) throw damaged("its config is missing");
  const config = parseImageConfig(configBytes);
  for (const diffId of record.layers) {
    if (!store.hasLayer(diffId)) throw damaged(`layer ${diffId} is missing`);
  }
  return {
    id: record.id,
    ref: name,
    layers: record.layers.map((d) => store.layerDiff(d)).reverse(),
    config: config.config,
  };
}
