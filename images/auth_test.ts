import assert from "node:assert/strict";
import {
  configPath,
  normalizeServer,
  readCredentials,
  removeCredentials,
  saveCredentials,
} from "./auth.ts";

Deno.test("auth: Docker's config.json, other keys kept, 0600, Hub's key", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mini-docker-auth-" });
  const saved = Deno.env.get("DOCKER_CONFIG");
  Deno.env.set("DOCKER_CONFIG", dir);
  try {
    assert.equal(configPath(), `${dir}/config.json`);
    Deno.writeTextFileSync(
      `${dir}/config.json`,
      JSON.stringify({ auths: { "https://other.example/v1/": { auth: btoa("o:p") } }, x: 1 }),
    );
    assert.deepEqual(readCredentials("other.example"), { username: "o", password: "p" });
    saveCredentials("127.0.0.1:5000", { username: "alice", password: "a:b" });
    saveCredentials(normalizeServer(""), { username: "hub", password: "h" });
    const doc = JSON.parse(Deno.readTextFileSync(`${dir}/config.json`));
    assert.equal(doc.x, 1);
    assert.deepEqual(doc.auths["127.0.0.1:5000"], { auth: btoa("alice:a:b") });
    assert.deepEqual(doc.auths["https://index.docker.io/v1/"], { auth: btoa("hub:h") });
    assert.equal(Deno.statSync(`${dir}/config.json`).mode! & 0o777, 0o600);
    assert.deepEqual(readCredentials("127.0.0.1:5000"), { username: "alice", password: "a:b" });
    assert.deepEqual(readCredentials("docker.io"), { username: "hub", password: "h" });
    assert.equal(removeCredentials("127.0.0.1:5000"), true);
    assert.equal(removeCredentials("127.0.0.1:5000"), false);
    assert.equal(readCredentials("127.0.0.1:5000"), undefined);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["config.json"]);
  } finally {
    if (saved === undefined) Deno.env.delete("DOCKER_CONFIG");
    else Deno.env.set("DOCKER_CONFIG", saved);
    await Deno.remove(dir, { recursive: true });
  }
});
