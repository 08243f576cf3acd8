/**
 * Test helper: a real registry (Debian's `docker-registry`, the CNCF distribution server) on a
 * free loopback port with its storage in a temp dir, plus the plain HTTP uploads that push
 * blobs, manifests and indexes into it, and a busybox root filesystem built from the host.
 */

import { createHash } from "node:crypto";
import { zstdCompressSync } from "node:zlib";
import { gzip, type TarSpec } from "./image_tar.ts";

export const REGISTRY_BIN = "/usr/bin/docker-registry";

/** Media types used when pushing. */
export const OCI = {
  index: "application/vnd.oci.image.index.v1+json",
  manifest: "application/vnd.oci.image.manifest.v1+json",
  config: "application/vnd.oci.image.config.v1+json",
  layer: "application/vnd.oci.image.layer.v1.tar",
  layerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  layerZstd: "application/vnd.oci.image.layer.v1.tar+zstd",
} as const;
export const DOCKER = {
  list: "application/vnd.docker.distribution.manifest.list.v2+json",
  manifest: "application/vnd.docker.distribution.manifest.v2+json",
  config: "application/vnd.docker.container.image.v1+json",
  layerGzip: "application/vnd.docker.image.rootfs.diff.tar.gzip",
} as const;

/** A blob as a manifest refers to it. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { os: string; architecture: string; variant?: string };
}

/** What pushImage stored. */
export interface PushedImage {
  /** Descriptor of the manifest (for an index). */
  manifest: Descriptor;
  config: Descriptor;
  layers: Descriptor[];
  diffIds: string[];
}

/** One layer to push: a tar, gzipped, zstd-compressed or not. */
export interface LayerInput {
  tar: Uint8Array;
  gzip?: boolean;
  zstd?: boolean;
}

export function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

/** A free TCP port on loopback (bound, read, released). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** A running docker-registry; `await using` stops it and removes its storage. */
export class TestRegistry implements AsyncDisposable {
  readonly host: string;
  readonly dir: string;
  #child: Deno.ChildProcess;

  private constructor(host: string, dir: string, child: Deno.ChildProcess) {
    this.host = host;
    this.dir = dir;
    this.#child = child;
  }

  /**
   * Starts a registry. `htpasswd`: only this user may use it (Basic auth, as a private
   * registry); `accessLog`: keep the access log (one line per request) for `log()`.
   */
  static async start(
    opts: {
      htpasswd?: { user: string; password: string };
      token?: TokenServer;
      accessLog?: boolean;
    } = {},
  ): Promise<TestRegistry> {
    try {
      Deno.statSync(REGISTRY_BIN);
    } catch {
      throw new Error(`${REGISTRY_BIN} is missing: apt-get install docker-registry`);
    }
    const dir = await Deno.makeTempDir({ prefix: "mini-docker-registry-" });
    const port = freePort();
    const host = `127.0.0.1:${port}`;
    const auth: string[] = [];
    if (opts.htpasswd !== undefined) {
      const { user, password } = opts.htpasswd;
      const out = await new Deno.Command("htpasswd", { args: ["-Bbn", user, password] }).output();
      if (!out.success) throw new Error("htpasswd failed (apt-get install apache2-utils)");
      await Deno.writeFile(`${dir}/htpasswd`, out.stdout);
      auth.push("auth:", "  htpasswd:", "    realm: test", `    path: ${dir}/htpasswd`);
    }
    if (opts.token !== undefined) {
      auth.push(
        "auth:",
        "  token:",
        `    realm: ${opts.token.realm}`,
        `    service: ${TokenServer.SERVICE}`,
        `    issuer: ${TokenServer.ISSUER}`,
        `    rootcertbundle: ${opts.token.certPath}`,
      );
    }
    await Deno.writeTextFile(
      `${dir}/config.yml`,
      [
        "version: 0.1",
        "log:",
        "  level: error",
        "  accesslog:",
        `    disabled: ${opts.accessLog ? "false" : "true"}`,
        ...auth,
        "storage:",
        "  filesystem:",
        `    rootdirectory: ${dir}/storage`,
        "  delete:",
        "    enabled: true",
        "http:",
        `  addr: ${host}`,
        "",
      ].join("\n"),
    );
    // The access log goes to stdout: straight into a file (sh execs the registry itself).
    const child = new Deno.Command("/bin/sh", {
      args: [
        "-c",
        `exec ${REGISTRY_BIN} serve "$1" >"$2"`,
        "sh",
        `${dir}/config.yml`,
        opts.accessLog ? `${dir}/access.log` : "/dev/null",
      ],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    const registry = new TestRegistry(host, dir, child);
    try {
      const deadline = Date.now() + 15_000;
      for (;;) {
        try {
          const res = await fetch(`http://${host}/v2/`);
          await res.body?.cancel();
          if (res.ok || res.status === 401) break;
        } catch {
          // Not listening yet.
        }
        if (Date.now() > deadline) throw new Error(`docker-registry did not start on ${host}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    } catch (err) {
      await registry[Symbol.asyncDispose]();
      throw err;
    }
    return registry;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.#child.kill("SIGTERM");
    } catch {
      // Already exited.
    }
    await this.#child.status;
    await Deno.remove(this.dir, { recursive: true });
  }

  /** The access log so far (started with `accessLog`): one line per request. */
  log(): string {
    return Deno.readTextFileSync(`${this.dir}/access.log`);
  }

  /** Where the registry keeps a blob's bytes (to tamper with them). */
  blobDataPath(digest: string): string {
    const hex = digest.slice(7);
    return `${this.dir}/storage/docker/registry/v2/blobs/sha256/${hex.slice(0, 2)}/${hex}/data`;
  }

  /** Uploads a blob (POST then PUT, as the distribution spec describes). */
  async pushBlob(repo: string, bytes: Uint8Array, mediaType: string): Promise<Descriptor> {
    const digest = sha256(bytes);
    const start = await fetch(`http://${this.host}/v2/${repo}/blobs/uploads/`, { method: "POST" });
    await start.body?.cancel();
    if (start.status !== 202) throw new Error(`upload start: HTTP ${start.status}`);
    const location = new URL(start.headers.get("location")!, `http://${this.host}`);
    location.searchParams.set("digest", digest);
    const put = await fetch(location, {
      method: "PUT",
      headers: { "content-type": "application/octet-stream" },
      body: bytes as Uint8Array<ArrayBuffer>,
    });
    const text = await put.text();
    if (put.status !== 201) throw new Error(`upload ${digest}: HTTP ${put.status} ${text}`);
    return { mediaType, digest, size: bytes.byteLength };
  }

  /** PUTs a manifest or index under a tag (or its digest). */
  async pushManifest(
    repo: string,
    reference: string,
    doc: unknown,
    mediaType: string,
  ): Promise<Descriptor> {
    const bytes = new TextEncoder().encode(JSON.stringify(doc));
    const res = await fetch(`http://${this.host}/v2/${repo}/manifests/${reference}`, {
      method: "PUT",
      headers: { "content-type": mediaType },
      body: bytes,
    });
    const text = await res.text();
    if (res.status !== 201) throw new Error(`manifest ${repo}:${reference}: ${res.status} ${text}`);
    return { mediaType, digest: sha256(bytes), size: bytes.byteLength };
  }

  /** Pushes layers, a config and a manifest (OCI, or Docker schema 2 with `docker: true`). */
  async pushImage(repo: string, reference: string, opts: {
    layers: LayerInput[];
    config?: Record<string, unknown>;
    architecture?: string;
    os?: string;
    docker?: boolean;
  }): Promise<PushedImage> {
    const layers: Descriptor[] = [];
    const diffIds: string[] = [];
    for (const layer of opts.layers) {
      diffIds.push(sha256(layer.tar));
      const bytes = layer.zstd
        ? new Uint8Array(zstdCompressSync(layer.tar))
        : layer.gzip
        ? await gzip(layer.tar)
        : layer.tar;
      const type = layer.zstd
        ? OCI.layerZstd
        : opts.docker
        ? DOCKER.layerGzip
        : layer.gzip
        ? OCI.layerGzip
        : OCI.layer;
      layers.push(await this.pushBlob(repo, bytes, type));
    }
    const configDoc = {
      created: "2024-01-02T03:04:05Z",
      architecture: opts.architecture ?? "amd64",
      os: opts.os ?? "linux",
      config: opts.config ?? {},
      rootfs: { type: "layers", diff_ids: diffIds },
      history: diffIds.map(() => ({ created_by: "test" })),
    };
    const config = await this.pushBlob(
      repo,
      new TextEncoder().encode(JSON.stringify(configDoc)),
      opts.docker ? DOCKER.config : OCI.config,
    );
    const mediaType = opts.docker ? DOCKER.manifest : OCI.manifest;
    const manifest = await this.pushManifest(repo, reference, {
      schemaVersion: 2,
      mediaType,
      config,
      layers,
    }, mediaType);
    return { manifest, config, layers, diffIds };
  }

  /** Pushes an index (or Docker manifest list) of already pushed manifests. */
  async pushIndex(
    repo: string,
    reference: string,
    manifests: Descriptor[],
    opts: { docker?: boolean } = {},
  ): Promise<Descriptor> {
    const mediaType = opts.docker ? DOCKER.list : OCI.index;
    return await this.pushManifest(repo, reference, {
      schemaVersion: 2,
      mediaType,
      manifests,
    }, mediaType);
  }
}

/**
 * A small root filesystem from the host's static busybox: /bin/busybox plus applet symlinks,
 * /etc/passwd and /etc/group with a `web` user (uid 1000) in two groups.
 */
export function busyboxRootfs(): TarSpec[] {
  const busybox = Deno.readFileSync("/bin/busybox");
  const applets = ["sh", "ls", "cat", "echo", "id", "stat", "test", "true", "false", "sleep"];
  return [
    { path: "bin/", type: "dir" },
    { path: "bin/busybox", data: busybox, mode: 0o755 },
    ...applets.map((a): TarSpec => ({ path: `bin/${a}`, type: "symlink", linkpath: "busybox" })),
    { path: "etc/", type: "dir" },
    {
      path: "etc/passwd",
      data: "root:x:0:0:root:/root:/bin/sh\nweb:x:1000:1000:web:/home/web:/bin/sh\n",
    },
    { path: "etc/group", data: "root:x:0:\nweb:x:1000:\nwheel:x:10:root,web\naudio:x:29:web\n" },
    { path: "tmp/", type: "dir", mode: 0o1777 },
    { path: "root/", type: "dir", mode: 0o700 },
  ];
}

/**
 * A loopback HTTP proxy in front of a registry that trickles blob bodies (4 KiB every
 * `delayMs`), so that pulls overlap or can be killed half-way, and counts blob requests.
 */
export class SlowProxy implements AsyncDisposable {
  readonly host: string;
  /** Blob GETs per digest. */
  readonly blobRequests = new Map<string, number>();
  /** Blob bytes sent so far. */
  served = 0;
  #server: Deno.HttpServer<Deno.NetAddr>;

  constructor(upstream: string, delayMs = 20) {
    this.#server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
      const url = new URL(req.url);
      const res = await fetch(`http://${upstream}${url.pathname}${url.search}`, {
        method: req.method,
        headers: req.headers,
      });
      const blob = /\/blobs\/(sha256:[a-f0-9]{64})$/.exec(url.pathname)?.[1];
      if (blob === undefined || res.body === null) return res;
      this.blobRequests.set(blob, (this.blobRequests.get(blob) ?? 0) + 1);
      const reader = res.body.getReader();
      const body = new ReadableStream<Uint8Array>({
        pull: async (ctl) => {
          const { done, value } = await reader.read();
          if (done) return ctl.close();
          for (let i = 0; i < value.byteLength; i += 4096) {
            const piece = value.slice(i, i + 4096);
            this.served += piece.byteLength;
            ctl.enqueue(piece);
            await new Promise((r) => setTimeout(r, delayMs));
          }
        },
        cancel: (reason) => reader.cancel(reason),
      });
      return new Response(body, { status: res.status, headers: res.headers });
    });
    this.host = `127.0.0.1:${this.#server.addr.port}`;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.#server.shutdown();
  }
}

/**
 * A token service for a registry configured with `token` auth (as Docker Hub's): it checks one
 * user's password (Basic) and grants what is asked for; anonymous requests get no access. The
 * tokens are ES256 JWTs carrying their certificate (`x5c`), which the registry trusts.
 */
export class TokenServer implements AsyncDisposable {
  static readonly SERVICE = "test-registry";
  static readonly ISSUER = "test-token-issuer";
  readonly realm: string;
  readonly certPath: string;
  /** Requests seen: `user scope...` ("-" when anonymous). */
  readonly requests: string[] = [];
  #dir: string;
  #server: Deno.HttpServer<Deno.NetAddr>;

  private constructor(
    dir: string,
    key: CryptoKey,
    certDer: Uint8Array,
    user: string,
    password: string,
  ) {
    this.#dir = dir;
    this.certPath = `${dir}/cert.pem`;
    const b64url = (bytes: Uint8Array) =>
      btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_").replace(
        /=+$/,
        "",
      );
    const json = (v: unknown) => b64url(new TextEncoder().encode(JSON.stringify(v)));
    const x5c = btoa(String.fromCharCode(...certDer));
    this.#server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
      const url = new URL(req.url);
      const basic = req.headers.get("authorization")?.replace(/^Basic /, "");
      const who = basic === undefined ? undefined : atob(basic);
      const scopes = url.searchParams.getAll("scope");
      this.requests.push(`${who?.split(":")[0] ?? "-"} ${scopes.join(" ")}`.trim());
      if (who !== undefined && who !== `${user}:${password}`) {
        return new Response('{"details":"incorrect username or password"}', { status: 401 });
      }
      const access = who === undefined ? [] : scopes.map((scope) => {
        const [type, name, actions] = scope.split(":");
        return { type, name, actions: (actions ?? "").split(",") };
      });
      const now = Math.floor(Date.now() / 1000);
      const body = `${json({ alg: "ES256", typ: "JWT", x5c: [x5c] })}.${
        json({
          iss: TokenServer.ISSUER,
          sub: who === undefined ? "" : user,
          aud: url.searchParams.get("service"),
          exp: now + 300,
          nbf: now - 10,
          iat: now,
          jti: crypto.randomUUID(),
          access,
        })
      }`;
      const signature = new Uint8Array(
        await crypto.subtle.sign(
          { name: "ECDSA", hash: "SHA-256" },
          key,
          new TextEncoder().encode(body),
        ),
      );
      return Response.json({ token: `${body}.${b64url(signature)}` });
    });
    this.realm = `http://127.0.0.1:${this.#server.addr.port}/token`;
  }

  /** A token service for `user`/`password` (its key and certificate made with openssl). */
  static async start(user: string, password: string): Promise<TokenServer> {
    const dir = await Deno.makeTempDir({ prefix: "mini-docker-token-" });
    const openssl = async (...args: string[]) => {
      const out = await new Deno.Command("openssl", { args, stdout: "piped", stderr: "piped" })
        .output();
      if (!out.success) {
        throw new Error(`openssl ${args[0]}: ${new TextDecoder().decode(out.stderr)}`);
      }
      return out.stdout;
    };
    await openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", `${dir}/ec.pem`);
    await openssl(
      "pkcs8",
      "-topk8",
      "-nocrypt",
      "-in",
      `${dir}/ec.pem`,
      "-outform",
      "DER",
      "-out",
      `${dir}/key.der`,
    );
    await openssl(
      "req",
      "-x509",
      "-new",
      "-key",
      `${dir}/ec.pem`,
      "-subj",
      "/CN=token",
      "-days",
      "1",
      "-out",
      `${dir}/cert.pem`,
    );
    const der = await openssl("x509", "-in", `${dir}/cert.pem`, "-outform", "DER");
    const key = await crypto.subtle.importKey(
      "pkcs8",
      Deno.readFileSync(`${dir}/key.der`),
      { name: "ECDSA", namedCurve: "P-256" },
      false,
      ["sign"],
    );
    return new TokenServer(dir, key, der, user, password);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.#server.shutdown();
    await Deno.remove(this.#dir, { recursive: true });
  }
}
