import assert from "node:assert/strict";
import { parseChallenge, RegistryClient, RegistryError } from "./registry.ts";
import { sha256Digest } from "./digest.ts";

Deno.test("registry: WWW-Authenticate challenges", () => {
  assert.deepEqual(
    parseChallenge(
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"',
    ),
    {
      scheme: "bearer",
      params: {
        realm: "https://auth.docker.io/token",
        service: "registry.docker.io",
        scope: "repository:library/alpine:pull",
      },
    },
  );
  assert.deepEqual(parseChallenge('Basic realm="x y"'), {
    scheme: "basic",
    params: { realm: "x y" },
  });
  assert.deepEqual(parseChallenge(""), { scheme: "", params: {} });
});

/**
 * Docker Hub's anonymous token dance, served by a fake on loopback (the real one is on the
 * internet): 401 with a Bearer challenge, a token from the realm, the request again with it.
 */
Deno.test("registry: anonymous bearer token from the challenge", async () => {
  const manifest = new TextEncoder().encode(JSON.stringify({ schemaVersion: 2, layers: [] }));
  const seen: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const url = new URL(req.url);
    seen.push(`${url.pathname}${url.search} ${req.headers.get("authorization") ?? "-"}`);
    if (url.pathname === "/token") {
      const ok = url.searchParams.get("scope") === "repository:lib/app:pull" &&
        url.searchParams.get("service") === "fake";
      return ok ? Response.json({ token: "t0ken" }) : new Response("bad", { status: 400 });
    }
    if (req.headers.get("authorization") !== "Bearer t0ken") {
      return new Response(
        '{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}',
        {
          status: 401,
          headers: {
            "www-authenticate":
              `Bearer realm="http://${url.host}/token",service="fake",scope="repository:lib/app:pull"`,
          },
        },
      );
    }
    if (url.pathname === "/v2/lib/app/manifests/latest") {
      return new Response(manifest, {
        headers: { "content-type": "application/vnd.oci.image.manifest.v1+json" },
      });
    }
    return Response.json({ errors: [{ code: "MANIFEST_UNKNOWN", message: "manifest unknown" }] }, {
      status: 404,
    });
  });
  try {
    const client = new RegistryClient(`localhost:${server.addr.port}`, "lib/app");
    const got = await client.manifest("latest");
    assert.equal(got.digest, sha256Digest(manifest));
    assert.equal(got.mediaType, "application/vnd.oci.image.manifest.v1+json");
    const port = server.addr.port;
    assert.deepEqual(seen, [
      "/v2/lib/app/manifests/latest -",
      `/token?service=fake&scope=repository%3Alib%2Fapp%3Apull -`,
      "/v2/lib/app/manifests/latest Bearer t0ken",
    ]);
    const err = await client.manifest("nope").catch((e) => e);
    assert.ok(err instanceof RegistryError);
    assert.equal(err.message, "manifest unknown");
    assert.equal(err.status, 404);
    assert.equal(seen.length, 4, `the token is reused (port ${port})`);
  } finally {
    await server.shutdown();
  }
});

Deno.test("registry: a manifest that does not match its digest is refused", async () => {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () =>
      new Response("{}", {
        headers: { "content-type": "application/vnd.oci.image.manifest.v1+json" },
      }),
  );
  try {
    const client = new RegistryClient(`127.0.0.1:${server.addr.port}`, "x");
    const digest = `sha256:${"0".repeat(64)}`;
    await assert.rejects(client.manifest(digest), /manifest sha256:0+: digest mismatch/);
  } finally {
    await server.shutdown();
  }
});

Deno.test("registry: a blob redirected to another host gets no token", async () => {
  const seen: string[] = [];
  const cdn = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    seen.push(`cdn ${req.headers.get("authorization") ?? "-"}`);
    return new Response("blob");
  });
  const registry = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const url = new URL(req.url);
    seen.push(`${url.pathname} ${req.headers.get("authorization") ?? "-"}`);
    if (url.pathname === "/token") return Response.json({ access_token: "t" });
    if (req.headers.get("authorization") !== "Bearer t") {
      return new Response(null, {
        status: 401,
        headers: { "www-authenticate": `Bearer realm="http://${url.host}/token"` },
      });
    }
    return Response.redirect(`http://127.0.0.1:${cdn.addr.port}/data`, 307);
  });
  try {
    const client = new RegistryClient(`127.0.0.1:${registry.addr.port}`, "x");
    const digest = sha256Digest(new TextEncoder().encode("blob"));
    assert.equal(new TextDecoder().decode(await client.blobBytes(digest)), "blob");
    assert.deepEqual(seen, [
      `/v2/x/blobs/${digest} -`,
      "/token -",
      `/v2/x/blobs/${digest} Bearer t`,
      "cdn -",
    ]);
  } finally {
    await registry.shutdown();
    await cdn.shutdown();
  }
});

Deno.test("registry: HTTPS unless loopback or --insecure", async (t) => {
  const ip = Deno.networkInterfaces().find((i) =>
    i.family === "IPv4" && !i.address.startsWith("127.")
  )
    ?.address;
  if (ip === undefined) {
    // This machine has no non-loopback address to serve plain HTTP on.
    return void await t.step({ name: "no non-loopback IPv4 address", ignore: true, fn() {} });
  }
  const manifest = new TextEncoder().encode("{}");
  const server = Deno.serve(
    { hostname: "0.0.0.0", port: 0, onListen() {} },
    () =>
      new Response(manifest, {
        headers: { "content-type": "application/vnd.oci.image.manifest.v1+json" },
      }),
  );
  try {
    const host = `${ip}:${server.addr.port}`;
    await assert.rejects(
      new RegistryClient(host, "x").manifest("latest"),
      new RegExp(`^UserError: Cannot reach registry "${host}": it answers HTTPS with plain HTTP`),
    );
    const got = await new RegistryClient(host, "x", { insecure: true }).manifest("latest");
    assert.equal(got.digest, sha256Digest(manifest));
  } finally {
    await server.shutdown();
  }
});
