/**
 * A client for the OCI distribution API (what Docker Hub and `docker-registry` speak): manifests
 * and blobs of one repository, with anonymous bearer tokens obtained from the registry's
 * `WWW-Authenticate` challenge. HTTPS unless the host is loopback or the user said `--insecure`.
 */

import { UserError } from "../base/errors.ts";
import { isDigest, sha256Digest } from "./digest.ts";
import { isLoopbackHost, registryEndpoint } from "./reference.ts";
import { basicAuth, type Credentials, readCredentials } from "./auth.ts";

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
/** Bytes per PATCH of an upload: what an interruption waits for at most. */
const UPLOAD_CHUNK = 16 << 20;
/** Exit code of a push interrupted by Ctrl-C (128 + SIGINT). */
const EXIT_INTERRUPTED = 130;
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

/** How a client authenticates and what it asks for. */
export interface ClientOptions {
  insecure?: boolean;
  /**
   * Token scopes to ask for (default `repository:<repo>:pull`; a push asks for `pull,push`,
   * plus `pull` on the repositories it mounts blobs from).
   */
  scopes?: string[];
  /** Credentials; default: the ones saved by `login` for this registry; null: none. */
  credentials?: Credentials | null;
  /** Aborts the requests under way (an interrupted push); clean-up requests still go. */
  signal?: AbortSignal;
}

/** A request body: bytes (which can be sent again after a challenge) or a stream (once). */
type Body = Uint8Array | ReadableStream<Uint8Array>;

/** Talks to one repository of one registry. */
export class RegistryClient {
  readonly domain: string;
  readonly repository: string;
  #root: string;
  #base: string;
  #authorization: string | undefined;
  #scopes: string[];
  #creds: Credentials | undefined;
  #push: boolean;
  #signal: AbortSignal | undefined;

  constructor(domain: string, repository: string, opts: ClientOptions = {}) {
    this.domain = domain;
    this.repository = repository;
    const scheme = opts.insecure || isLoopbackHost(domain) ? "http" : "https";
    this.#root = `${scheme}://${registryEndpoint(domain)}/v2/`;
    this.#base = `${this.#root}${repository}`;
    this.#scopes = opts.scopes ?? [`repository:${repository}:pull`];
    this.#push = this.#scopes.some((s) => s === `repository:${repository}:pull,push`);
    this.#signal = opts.signal;
    this.#creds = opts.credentials === null
      ? undefined
      : opts.credentials ?? readCredentials(domain);
  }

  /** GETs a manifest by tag or digest; the digest is checked when it is known in advance. */
  async manifest(reference: string): Promise<FetchedManifest> {
    const res = await this.#send("GET", `${this.#base}/manifests/${reference}`, { accept: ACCEPT });
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
    const res = await this.#send("GET", `${this.#base}/blobs/${digest}`);
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

  /** Authenticates now (before a streamed upload, which cannot be sent twice). */
  async ping(): Promise<void> {
    // The repository's own URL draws the challenge with this repository's scope.
    const res = await this.#send("HEAD", `${this.#base}/blobs/${EMPTY_DIGEST}`);
    await res.body?.cancel();
    if (res.status === 401 || res.status === 403) throw await responseError(res);
  }

  /** True when the repository has the blob (HEAD). */
  async hasBlob(digest: string): Promise<boolean> {
    const res = await this.#send("HEAD", `${this.#base}/blobs/${digest}`);
    await res.body?.cancel();
    if (res.status === 200) return true;
    if (res.status === 404) return false;
    throw await responseError(res);
  }

  /**
   * Asks the registry to mount a blob from another of its repositories. True when it did; else
   * the upload session it opened instead (its URL), for the caller to upload into.
   */
  async mountBlob(digest: string, from: string): Promise<true | string> {
    const url = `${this.#base}/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${
      encodeURIComponent(from)
    }`;
    const res = await this.#send("POST", url, { body: new Uint8Array() });
    await res.body?.cancel();
    if (res.status === 201) return true;
    if (res.status === 202) return this.#location(res);
    throw await responseError(res);
  }

  /** Opens an upload session; its URL. */
  async startUpload(): Promise<string> {
    const res = await this.#send("POST", `${this.#base}/blobs/uploads/`, {
      body: new Uint8Array(),
    });
    if (res.status !== 202) throw await responseError(res);
    await res.body?.cancel();
    return this.#location(res);
  }

  /**
   * Uploads a blob into an upload session in chunks of UPLOAD_CHUNK bytes (one PATCH each, with
   * its Content-Range; each body streamed, so memory stays constant), then closes the session
   * with the blob's digest. `chunk(offset, length)` gives the bytes. On failure the session is
   * cancelled (DELETE) so the registry keeps no half-written blob; an interruption (`signal` of
   * the client) takes effect between chunks, where the session's state is known to the registry
   * and a DELETE is honoured (after a PATCH cut short, distribution refuses it).
   */
  async upload(
    session: string,
    chunk: (offset: number, length: number) => ReadableStream<Uint8Array>,
    size: number,
    digest: string,
  ): Promise<void> {
    let location = session;
    try {
      for (let offset = 0; offset < size; offset += UPLOAD_CHUNK) {
        if (this.#signal?.aborted) throw new UserError("Interrupted", EXIT_INTERRUPTED);
        const length = Math.min(UPLOAD_CHUNK, size - offset);
        const patch = await this.#send("PATCH", location, {
          body: chunk(offset, length),
          headers: {
            "content-type": "application/octet-stream",
            "content-length": String(length),
            "content-range": `${offset}-${offset + length - 1}`,
          },
          cleanup: true, // a chunk is finished even when interrupted
        });
        if (patch.status !== 202 && patch.status !== 204) throw await responseError(patch);
        await patch.body?.cancel();
        if (patch.headers.get("location") !== null) location = this.#location(patch);
      }
      const url = new URL(location);
      url.searchParams.set("digest", digest);
      const put = await this.#send("PUT", url.href, {
        body: new Uint8Array(),
        headers: { "content-type": "application/octet-stream" },
      });
      if (put.status !== 201 && put.status !== 204) throw await responseError(put);
      await put.body?.cancel();
    } catch (err) {
      await this.cancelUpload(location);
      throw err;
    }
  }

  /** Cancels an upload session (best effort: the registry expires abandoned ones itself). */
  async cancelUpload(location: string): Promise<void> {
    try {
      const res = await this.#send("DELETE", location, { cleanup: true });
      await res.body?.cancel();
    } catch {
      // Unreachable now: nothing more to do.
    }
  }

  /** PUTs a manifest under a tag; the digest the registry gives it. */
  async putManifest(reference: string, bytes: Uint8Array, mediaType: string): Promise<string> {
    const res = await this.#send("PUT", `${this.#base}/manifests/${reference}`, {
      body: bytes,
      headers: { "content-type": mediaType },
    });
    if (res.status !== 201 && res.status !== 200 && res.status !== 202) {
      throw await responseError(res);
    }
    await res.body?.cancel();
    const digest = res.headers.get("docker-content-digest");
    return isDigest(digest) ? digest : sha256Digest(bytes);
  }

  /**
   * Checks credentials against the registry (what `login` does before saving them): GET /v2/
   * with them, through the token service when the registry sends one.
   */
  async login(): Promise<void> {
    this.#scopes = [];
    const res = await this.#send("GET", this.#root);
    await res.body?.cancel();
    if (!res.ok) throw await responseError(res);
  }

  #location(res: Response): string {
    const location = res.headers.get("location");
    if (location === null) {
      throw new RegistryError("the registry gave no upload location", res.status);
    }
    return new URL(location, this.#root).href;
  }

  async #send(
    method: string,
    url: string,
    opts: { accept?: string; headers?: Record<string, string>; body?: Body; cleanup?: boolean } =
      {},
  ): Promise<Response> {
    let res = await this.#fetch(method, url, opts);
    if (res.status === 401 && !(opts.body instanceof ReadableStream)) {
      const challenge = res.headers.get("www-authenticate") ?? "";
      await res.body?.cancel();
      this.#authorization = await this.#authenticate(challenge);
      res = await this.#fetch(method, url, opts);
      if (res.status === 401) {
        await res.body?.cancel();
        throw this.#denied();
      }
    }
    return res;
  }

  #denied(): RegistryError {
    if (this.#scopes.length === 0) {
      return new RegistryError("unauthorized: incorrect username or password", 401, "UNAUTHORIZED");
    }
    const server = this.domain === "docker.io" ? "" : ` ${this.domain}`;
    const hint = this.#creds === undefined ? ` (log in with "mini-docker login${server}")` : "";
    return new RegistryError(
      this.#push
        ? `unauthorized: authentication required${hint}`
        : `pull access denied, repository does not exist or may require authorization${hint}`,
      401,
      "UNAUTHORIZED",
    );
  }

  /**
   * One request, redirects of GET and HEAD followed by hand: blobs are often served from another
   * host (a CDN), which must not receive our registry credentials. Gives up when no answer comes
   * in time (an upload's answer comes after its body: no limit there).
   */
  async #fetch(
    method: string,
    url: string,
    opts: { accept?: string; headers?: Record<string, string>; body?: Body; cleanup?: boolean },
  ): Promise<Response> {
    // Credentials go to the registry itself only: never to a host that a redirect, or an upload
    // Location the registry answered, names (Docker keys them by the host that challenged).
    const origin = new URL(this.#root).origin;
    let target = url;
    for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
      // A redirect or an upload Location is the registry's word: web addresses only (Deno's
      // fetch would read a file: URL from this host).
      const protocol = new URL(target).protocol;
      if (protocol !== "https:" && protocol !== "http:") {
        throw new RegistryError(`the registry sent mini-docker to ${target}, not a web address`, 0);
      }
      const headers: Record<string, string> = { ...opts.headers };
      if (opts.accept) headers["accept"] = opts.accept;
      if (this.#authorization && new URL(target).origin === origin) {
        headers["authorization"] = this.#authorization;
      }
      const res = await fetchWithTimeout(target, headers, this.domain, {
        method,
        body: opts.body,
        timeout: opts.body instanceof ReadableStream ? undefined : HEADERS_TIMEOUT_MS,
        signal: opts.cleanup ? undefined : this.#signal,
      });
      const location = res.headers.get("location");
      if (method !== "GET" && method !== "HEAD") return res;
      if (res.status < 300 || res.status >= 400 || location === null) return res;
      await res.body?.cancel();
      target = new URL(location, target).href;
    }
    throw new RegistryError(`too many redirects for ${url}`, 0);
  }

  /**
   * The Authorization header a challenge asks for: Basic with the saved credentials, or a
   * bearer token from the challenge's realm (anonymous, or with the credentials).
   */
  async #authenticate(challenge: string): Promise<string> {
    const { scheme, params } = parseChallenge(challenge);
    if (scheme === "basic") {
      if (this.#creds === undefined) throw this.#denied();
      return basicAuth(this.#creds);
    }
    if (scheme !== "bearer" || !params.realm) {
      throw new RegistryError(
        `authentication required (${scheme || "no"} challenge, which mini-docker does not speak)`,
        401,
        "UNAUTHORIZED",
      );
    }
    // The realm is the registry's word: only a web address (Deno's fetch would read a file:
    // realm="file:///etc/shadow" from this host).
    let url: URL;
    try {
      url = new URL(params.realm);
    } catch {
      url = new URL("invalid:");
    }
    if (url.protocol !== "https:" && url.protocol !== "http:") {
      throw new RegistryError(
        `the registry's token service ${JSON.stringify(params.realm)} is not an http(s) address`,
        401,
        "UNAUTHORIZED",
      );
    }
    if (params.service) url.searchParams.set("service", params.service);
    const scopes = this.#scopes.length > 0 || params.scope === undefined
      ? this.#scopes
      : [params.scope];
    for (const scope of scopes) url.searchParams.append("scope", scope);
    const headers: Record<string, string> = {};
    if (this.#creds !== undefined) {
      headers["authorization"] = basicAuth(this.#creds);
      url.searchParams.set("account", this.#creds.username);
    }
    const res = await fetchWithTimeout(url.href, headers, url.host);
    if (res.status === 401) {
      await res.body?.cancel();
      throw this.#denied();
    }
    if (!res.ok) {
      const err = await responseError(res);
      throw new RegistryError(`cannot get a token from ${url.origin}: ${err.message}`, res.status);
    }
    let body;
    try {
      body = JSON.parse(new TextDecoder().decode(await readLimited(res, 1 << 20, "token")));
    } catch (err) {
      if (err instanceof RegistryError) throw err;
      throw new RegistryError(`the answer of ${url.origin} is not a token (not JSON)`, res.status);
    }
    const token = body?.token ?? body?.access_token;
    if (typeof token !== "string") {
      throw new RegistryError(`no token in the answer of ${url.origin}`, res.status);
    }
    return `Bearer ${token}`;
  }
}

/** The digest of no bytes: a HEAD of it draws a repository's challenge. */
const EMPTY_DIGEST = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

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
  opts: { method?: string; body?: Body; timeout?: number; signal?: AbortSignal } = {
    timeout: HEADERS_TIMEOUT_MS,
  },
): Promise<Response> {
  if (opts.signal?.aborted) throw new UserError("Interrupted", EXIT_INTERRUPTED);
  const abort = new AbortController();
  const timer = opts.timeout === undefined
    ? undefined
    : setTimeout(() => abort.abort(), opts.timeout);
  try {
    return await fetch(url, {
      method: opts.method ?? "GET",
      headers,
      body: opts.body as BodyInit | undefined,
      redirect: "manual",
      signal: opts.signal === undefined
        ? abort.signal
        : AbortSignal.any([abort.signal, opts.signal]),
    });
  } catch (err) {
    if (opts.signal?.aborted) throw new UserError("Interrupted", EXIT_INTERRUPTED);
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
