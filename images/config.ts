/**
 * Image manifests and configs (OCI image spec and Docker schema 2 share these shapes), parsed
 * and checked enough that later steps can trust their fields.
 */

import { isDigest } from "./digest.ts";
import { MEDIA_TYPES } from "./registry.ts";

/** A content descriptor: what a manifest says about a blob. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
}

/** An OS/architecture pair (plus variant, e.g. arm64 `v8`). */
export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

/** The defaults a container takes from its image; flags of `run` override them. */
export interface RuntimeConfig {
  Env?: string[];
  WorkingDir?: string;
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  User?: string;
  /** The ports the image says it serves ("80/tcp": {}), which `run -P` publishes. */
  ExposedPorts?: Record<string, Record<string, never>>;
  /** The image's labels, which its containers inherit. */
  Labels?: Record<string, string>;
  /** Paths that get an anonymous volume in every container of the image ("/data": {}). */
  Volumes?: Record<string, Record<string, never>>;
}

/** The parts of an image config this tool reads. */
export interface ImageConfig {
  created?: string;
  architecture?: string;
  os?: string;
  config: RuntimeConfig;
  diffIds: string[];
}

/** Parsed platform manifest: the config blob and the layers, bottom-most first. */
export interface ImageManifest {
  config: Descriptor;
  layers: Descriptor[];
}

/** Thrown for a document that does not have the shape its media type promises. */
export class FormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FormatError";
  }
}

const decoder = new TextDecoder();

/** True for an OCI image index or a Docker manifest list. */
export function isIndexMediaType(mediaType: string): boolean {
  return mediaType === MEDIA_TYPES.ociIndex || mediaType === MEDIA_TYPES.dockerList;
}

/** The platform this process runs on, in OCI terms (Deno's `x86_64` is `amd64`). */
export function hostPlatform(): Platform {
  const arch: Record<string, string> = { x86_64: "amd64", aarch64: "arm64" };
  const architecture = arch[Deno.build.arch] ?? Deno.build.arch;
  return architecture === "arm64"
    ? { os: "linux", architecture, variant: "v8" }
    : { os: "linux", architecture };
}

/** Parses `os/arch[/variant]` (the `--platform` flag); null when malformed. */
export function parsePlatform(text: string): Platform | null {
  const [os, architecture, variant, ...rest] = text.split("/");
  if (!os || !architecture || rest.length > 0 || variant === "") return null;
  return variant === undefined ? { os, architecture } : { os, architecture, variant };
}

/** `linux/arm64/v8` */
export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join("/");
}

/** The index entry for `want`; an arm64 entry without a variant counts as v8. */
export function selectPlatform(indexBytes: Uint8Array, want: Platform): Descriptor | null {
  const doc = parseJson(indexBytes, "image index");
  if (!Array.isArray(doc.manifests)) throw new FormatError("image index has no manifests");
  const variantOf = (p: Platform) => p.variant ?? (p.architecture === "arm64" ? "v8" : undefined);
  for (const raw of doc.manifests) {
    const d = descriptor(raw, "index entry");
    const p = d.platform;
    if (!p || p.os !== want.os || p.architecture !== want.architecture) continue;
    if (want.variant !== undefined && variantOf(p) !== want.variant) continue;
    return d;
  }
  return null;
}

/** Parses a platform manifest (OCI or Docker schema 2). */
export function parseManifest(bytes: Uint8Array): ImageManifest {
  const doc = parseJson(bytes, "manifest");
  if (doc.schemaVersion === 1) throw new FormatError("manifest schema 1 is not supported");
  if (doc.schemaVersion !== 2 || !Array.isArray(doc.layers)) {
    throw new FormatError("manifest is not an image manifest");
  }
  return {
    config: descriptor(doc.config, "config descriptor"),
    layers: doc.layers.map((l: unknown) => descriptor(l, "layer descriptor")),
  };
}

/** Parses an image config; `diffIds` are the uncompressed layer digests, bottom-most first. */
export function parseImageConfig(bytes: Uint8Array): ImageConfig {
  const doc = parseJson(bytes, "image config");
  const diffIds = doc.rootfs?.diff_ids;
  if (!Array.isArray(diffIds) || !diffIds.every(isDigest)) {
    throw new FormatError("image config has no valid rootfs.diff_ids");
  }
  const c = doc.config ?? {};
  const config: RuntimeConfig = {};
  if (stringArray(c.Env)) config.Env = c.Env;
  if (typeof c.WorkingDir === "string" && c.WorkingDir !== "") config.WorkingDir = c.WorkingDir;
  if (c.Entrypoint === null || stringArray(c.Entrypoint)) config.Entrypoint = c.Entrypoint;
  if (c.Cmd === null || stringArray(c.Cmd)) config.Cmd = c.Cmd;
  if (typeof c.User === "string" && c.User !== "") config.User = c.User;
  if (c.Labels !== null && typeof c.Labels === "object") {
    const labels = Object.entries(c.Labels).filter(([, v]) => typeof v === "string");
    if (labels.length > 0) config.Labels = Object.fromEntries(labels) as Record<string, string>;
  }
  if (c.Volumes !== null && typeof c.Volumes === "object") {
    const paths = Object.keys(c.Volumes).filter((k) => k.startsWith("/"));
    if (paths.length > 0) config.Volumes = Object.fromEntries(paths.map((k) => [k, {}]));
  }
  if (c.ExposedPorts !== null && typeof c.ExposedPorts === "object") {
    const ports = Object.keys(c.ExposedPorts).filter((k) => /^\d{1,5}(\/(tcp|udp|sctp))?$/.test(k));
    if (ports.length > 0) config.ExposedPorts = Object.fromEntries(ports.map((k) => [k, {}]));
  }
  return {
    created: typeof doc.created === "string" ? doc.created : undefined,
    architecture: typeof doc.architecture === "string" ? doc.architecture : undefined,
    os: typeof doc.os === "string" ? doc.os : undefined,
    config,
    diffIds,
  };
}

function stringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === "string");
}

function descriptor(raw: unknown, what: string): Descriptor {
  const d = raw as Record<string, unknown> | null;
  if (!d || typeof d !== "object" || !isDigest(d.digest) || typeof d.size !== "number") {
    throw new FormatError(`${what} lacks a sha256 digest or a size`);
  }
  const out: Descriptor = {
    mediaType: typeof d.mediaType === "string" ? d.mediaType : "",
    digest: d.digest,
    size: d.size,
  };
  const p = d.platform as Record<string, unknown> | undefined;
  if (p && typeof p.os === "string" && typeof p.architecture === "string") {
    out.platform = { os: p.os, architecture: p.architecture };
    if (typeof p.variant === "string") out.platform.variant = p.variant;
  }
  return out;
}

// deno-lint-ignore no-explicit-any
function parseJson(bytes: Uint8Array, what: string): any {
  try {
    const doc = JSON.parse(decoder.decode(bytes));
    if (doc === null || typeof doc !== "object") throw new Error("not an object");
    return doc;
  } catch (err) {
    throw new FormatError(`${what} is not valid JSON: ${(err as Error).message}`);
  }
}
