/**
 * A client for the OCI distribution API (what Docker Hub and `docker-registry` speak): manifests
 * and blobs of one repository, with anonymous bearer tokens obtained from the registry's
 * `WWW-Authenticate` challenge. HTTPS unless the host is loopback or the user said `--insecure`.
 */

import { UserError } from "../base/errors.ts";
import { isDigest, sha256Digest } from "./digest.ts";
import { isLoopbackHost, registryEndpoint } from "./reference.ts";

/** Manifest media types we ask for and understand. */
export const MEDIA_TYPES = {
  ociIndex: "application/vnd.oci.image.index.v1+json",
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  dockerList: "application/vnd.docker.distribution.manifest.list.v2+json",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
} as const;

const ACCEPT = Object.values(MEDIA_TYPES).join(", ");
/** Manifests and configs are small; refuse to buffer anything bigger (containerd's limit). */
const MAX_DOCUMENT = 4 << 20;
const MAX_REDIRECTS = 5;
/** How long a registry may take to start answering a request. */
const HEADERS_TIMEOUT_MS = 30_000;

/** An error response from the registry: HTTP status, the API's error code and message. */
export class RegistryError extends Error {
  readonly status: number;
  readonly code: string | undefined;
  constructor(message: string, status: number, code?: string) {
    super(message);
    this.name = "RegistryError";
    this.status = status;
    this.code = code;
  }
}

/** A manifest as fetched: its bytes (what the digest covers), media type and digest. */
export interface FetchedManifest {
  bytes: Uint8Array;
  mediaType: string;
  digest: string;
}

/** Talks to one repository of one registry. */
export class RegistryClient {
  readonly domain: string;
  readonly repository: string;
  #base: string;
  #token: string | undefined;

  constructor(domain: string, repository: string, opts: { insecure?: boolean } = {}) {
    this.domain = domain;
    this.repository = repository;
    const scheme = opts.insecure || isLoopbackHost(domain) ? "http" : "https";
    this.#base = `${scheme}://${registryEndpoint(domain)}/v2/${repository}`;
  }

  /** GETs a manifest by tag or digest; the digest is checked when it is known in advance. */
  async manifest(reference: string): Promise<FetchedManifest> {
    const res = await this.#get(`${this.#base}/manifests/${reference}`, ACCEPT);
    if (!res.ok) throw await responseError(res);
    const bytes = await readLimited(res, MAX_DOCUMENT, "manifest");
    const digest = sha256Digest(bytes);
    const expected = isDigest(reference) ? reference : res.headers.get("docker-content-digest");
    if (isDigest(expected) && expected !== digest) {
      throw new RegistryError(`manifest ${expected}: digest mismatch (got ${digest})`, 0);
    }
    let mediaType = res.headers.get("content-type")?.split(";")[0]?.trim() ?? "";
    if (!(Object.values(MEDIA_TYPES) as string[]).includes(mediaType)) {
      mediaType = sniffMediaType(bytes) ?? mediaType;
    }
    return { bytes, mediaType, digest };
  }

  /** GETs a blob; the caller streams the body and must check its digest. */
  async blob(digest: string): Promise<Response> {
    const res = await this.#get(`${this.#base}/blobs/${digest}`);
    if (!res.ok) throw await responseError(res);
    if (res.body === null) throw new RegistryError(`blob ${digest}: empty response`, res.status);
    return res;
  }

  /** A small blob (an image config) read whole, its digest checked. */
  async blobBytes(digest: string): Promise<Uint8Array> {
    const bytes = await readLimited(await this.blob(digest), MAX_DOCUMENT, `blob ${digest}`);
    const actual = sha256Digest(bytes);
    if (actual !== digest) {
      throw new RegistryError(`blob ${digest}: digest mismatch (got ${actual})`, 0);
    }
    return bytes;
  }

  async #get(url: string, accept?: string): Promise<Response> {
    let res = await this.#fetch(url, accept);
    if (res.status === 401) {
      const challenge = res.headers.get("www-authenticate") ?? "";
      await res.body?.cancel();
      this.#token = await this.#authenticate(challenge);
      res = await this.#fetch(url, accept);
      if (res.status === 401) {
        await res.body?.cancel();
        throw new RegistryError(
          "pull access denied, repository does not exist or may require authorization",
          401,
          "UNAUTHORIZED",
        );
      }
    }
    return res;
  }

  /**
   * One GET, redirects followed by hand: blobs are often served from another host (a CDN),
   * which must not receive our registry token. Gives up when no answer comes in time.
   */
  async #fetch(url: string, accept?: string): Promise<Response> {
    const origin = new URL(url).origin;
    let target = url;
    for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
      const headers: Record<string, string> = {};
      if (accept) headers["accept"] = accept;
      if (this.#token && new URL(target).origin === origin) {
        headers["authorization"] = `Bearer ${this.#token}`;
      }
      const res = await fetchWithTimeout(target, headers, this.domain);
      const location = res.headers.get("location");
      if (res.status < 300 || res.status >= 400 || location === null) return res;
      await res.body?.cancel();
      target = new URL(location, target).href;
    }
    throw new RegistryError(`too many redirects for ${url}`, 0);
  }

  /** Anonymous token for `repository:<name>:pull` from the challenge's realm. */
  async #authenticate(challenge: string): Promise<string> {
    const { scheme, params } = parseChallenge(challenge);
    if (scheme !== "bearer" || !params.realm) {
      throw new RegistryError(
        `authentication required (${scheme || "no"} challenge; only anonymous pulls are supported)`,
        401,
        "UNAUTHORIZED",
      );
    }
    const url = new URL(params.realm);
    if (params.service) url.searchParams.set("service", params.service);
    url.searchParams.set("scope", params.scope ?? `repository:${this.repository}:pull`);
    const res = await fetchWithTimeout(url.href, {}, url.host);
    if (!res.ok) {
      const err = await responseError(res);
      throw new RegistryError(`cannot get a token from ${url.origin}: ${err.message}`, res.status);
    }
    const body = JSON.parse(new TextDecoder().decode(await readLimited(res, 1 << 20, "token")));
    const token = body.token ?? body.access_token;
    if (typeof token !== "string") {
      throw new RegistryError(`no token in the answer of ${url.origin}`, res.status);
    }
    return token;
  }
}

/** Splits `Bearer realm="...",service="..."` into a lower-case scheme and its parameters. */
export function parseChallenge(header: string): { scheme: string; params: Record<string, string> } {
  const match = /^\s*(\S+)\s*(.*)$/.exec(header);
  const params: Record<string, string> = {};
  if (!match) return { scheme: "", params };
  const re = /([A-Za-z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))/g;
  for (const m of match[2]!.matchAll(re)) {
    params[m[1]!.toLowerCase()] = m[2] !== undefined ? m[2].replace(/\\(.)/g, "$1") : m[3]!;
  }
  return { scheme: match[1]!.toLowerCase(), params };
}

/**
 * fetch() that gives up when the response headers take longer than HEADERS_TIMEOUT_MS (the
 * body is not limited here: a layer may take long; unpackStream watches for stalls).
 */
async function fetchWithTimeout(
  url: string,
  headers: Record<string, string>,
  host: string,
): Promise<Response> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), HEADERS_TIMEOUT_MS);
  try {
    return await fetch(url, { headers, redirect: "manual", signal: abort.signal });
  } catch (err) {
    if (abort.signal.aborted) {
      throw new UserError(
        `Cannot reach registry "${host}": no answer in ${HEADERS_TIMEOUT_MS / 1000} s`,
      );
    }
    throw unreachable(host, err);
  } finally {
    clearTimeout(timer);
  }
}

/** `Cannot reach registry "host": connection refused` from a fetch failure. */
function unreachable(host: string, err: unknown): UserError {
  const e = err as { message?: string; cause?: unknown };
  const text = `${e?.message ?? err} ${e?.cause ?? ""}`;
  let reason: string;
  if (/connection refused/i.test(text)) reason = "connection refused";
  else if (/dns error|lookup address|not known|no address/i.test(text)) reason = "no such host";
  else if (/timed out/i.test(text)) reason = "connection timed out";
  else if (/InvalidContentType/.test(text)) {
    reason = "it answers HTTPS with plain HTTP (for a registry without TLS, pull with --insecure)";
  } else if (/certificate|tls|ssl/i.test(text)) reason = `TLS failed: ${lastLine(text)}`;
  else if (/reset|closed|broken pipe/i.test(text)) reason = "connection lost";
  else reason = lastLine(text);
  return new UserError(`Cannot reach registry "${host}": ${reason}`);
}

function lastLine(text: string): string {
  const cause = text.split(/: /).at(-1) ?? text;
  return cause.replace(/\s*\(os error \d+\)\s*$/, "").trim();
}

/** The registry's own words for a failed request (`manifest unknown`), else the HTTP status. */
async function responseError(res: Response): Promise<RegistryError> {
  let code: string | undefined;
  let message = `HTTP ${res.status} ${res.statusText}`.trim();
  try {
    const body = JSON.parse(new TextDecoder().decode(await readLimited(res, 1 << 20, "error")));
    const first = body?.errors?.[0];
    if (typeof first?.message === "string" && first.message !== "") message = first.message;
    if (typeof first?.code === "string") code = first.code;
  } catch {
    // Not a JSON error document: the status says enough.
  }
  if (res.status === 404 && code === undefined) message = "not found";
  return new RegistryError(message, res.status, code);
}

async function readLimited(res: Response, limit: number, what: string): Promise<Uint8Array> {
  const length = Number(res.headers.get("content-length") ?? NaN);
  if (length > limit) {
    await res.body?.cancel();
    throw new RegistryError(`${what} is too large (${length} bytes)`, res.status);
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for await (const chunk of res.body ?? []) {
      total += chunk.byteLength;
      if (total > limit) throw new RegistryError(`${what} is too large`, res.status);
      chunks.push(chunk);
    }
  } catch (err) {
    if (err instanceof RegistryError) throw err;
    throw new RegistryError(`${what}: connection lost (${(err as Error).message})`, res.status);
  }
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.byteLength;
  }
  return out;
}

function sniffMediaType(bytes: Uint8Array): string | undefined {
  try {
    const doc = JSON.parse(new TextDecoder().decode(bytes));
    if (typeof doc.mediaType === "string") return doc.mediaType;
    if (Array.isArray(doc.manifests)) return MEDIA_TYPES.ociIndex;
    if (doc.config && Array.isArray(doc.layers)) return MEDIA_TYPES.ociManifest;
  } catch {
    // Not JSON: the caller reports the media type it got.
  }
  return undefined;
}
