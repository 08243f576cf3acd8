import assert from "node:assert/strict";
import {
  familiarName,
  formatReference,
  isLoopbackHost,
  parseReference,
  registryEndpoint,
} from "./reference.ts";

const D = `sha256:${"a".repeat(64)}`;

Deno.test("reference: normalised like Docker", () => {
  const cases: Array<[string, string]> = [
    ["alpine", "docker.io/library/alpine:latest"],
    ["alpine:3.20", "docker.io/library/alpine:3.20"],
    ["library/alpine", "docker.io/library/alpine:latest"],
    ["docker.io/alpine", "docker.io/library/alpine:latest"],
    ["index.docker.io/library/alpine", "docker.io/library/alpine:latest"],
    ["user/app:v1", "docker.io/user/app:v1"],
    ["localhost/x", "localhost/x:latest"],
    ["localhost:5000/x:nope", "localhost:5000/x:nope"],
    ["127.0.0.1:5000/a/b/c", "127.0.0.1:5000/a/b/c:latest"],
    ["[::1]:5000/x", "[::1]:5000/x:latest"],
    ["ghcr.io/o/r@" + D, "ghcr.io/o/r@" + D],
    ["alpine:3@" + D, "docker.io/library/alpine:3@" + D],
    ["Registry/x", "Registry/x:latest"],
    ["my_app/sub__x.v2-x", "docker.io/my_app/sub__x.v2-x:latest"],
    ["my.app/x", "my.app/x:latest"], // a dot makes the first component a host
  ];
  for (const [input, want] of cases) assert.equal(formatReference(parseReference(input)), want);
  assert.deepEqual(parseReference("alpine@" + D), {
    domain: "docker.io",
    path: "library/alpine",
    tag: undefined,
    digest: D,
  });
});

Deno.test("reference: invalid names are refused with the reason", () => {
  const cases: Array<[string, RegExp]> = [
    ["", /empty name/],
    ["Alpine", /must be lowercase/],
    ["docker.io/Alpine", /must be lowercase/],
    ["alpine:", /tag "" is not valid/],
    ["alpine:-x", /tag "-x" is not valid/],
    ["alpine@sha256:abc", /digest must look like/],
    ["a".repeat(64), /64-character hexadecimal/],
    ["x//y", /component "" is not valid/],
    ["x/-y", /component "-y" is not valid/],
    ["bad_host:99999x/x", /registry host/],
  ];
  for (const [input, error] of cases) {
    assert.throws(() => parseReference(input), error, input);
    assert.throws(() => parseReference(input), /^UserError: Invalid reference format "/);
  }
});

Deno.test("reference: familiar names, endpoints and loopback hosts", () => {
  assert.equal(familiarName("docker.io/library/alpine"), "alpine");
  assert.equal(familiarName("docker.io/user/app"), "user/app");
  assert.equal(familiarName("docker.io/library/a/b"), "library/a/b");
  assert.equal(familiarName("localhost:5000/x"), "localhost:5000/x");
  assert.equal(registryEndpoint("docker.io"), "registry-1.docker.io");
  assert.equal(registryEndpoint("ghcr.io"), "ghcr.io");
  for (const host of ["localhost", "localhost:5000", "127.0.0.1", "127.1.2.3:80", "[::1]:5000"]) {
    assert.ok(isLoopbackHost(host), host);
  }
  for (const host of ["10.0.0.1:5000", "localhost.example.com", "docker.io", "[::2]:5000"]) {
    assert.ok(!isLoopbackHost(host), host);
  }
});
