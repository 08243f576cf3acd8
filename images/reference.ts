/**
 * Image references parsed the way Docker parses them (distribution/reference): `alpine` is
 * `docker.io/library/alpine:latest`, the first path component is a registry host when it holds
 * a `.` or a `:`, is `localhost`, or has upper-case letters; `NAME@sha256:<hex>` pins a digest.
 */

import { UserError } from "../base/errors.ts";

/** Docker Hub's name in references. */
export const DOCKER_HUB = "docker.io";
/** Where Docker Hub's registry API actually answers. */
const DOCKER_HUB_ENDPOINT = "registry-1.docker.io";

/** A parsed, normalised image reference. */
export interface Reference {
  /** Registry host with optional port: `docker.io`, `localhost:5000`, `[::1]:5000`. */
  domain: string;
  /** Repository path inside the registry: `library/alpine`. */
  path: string;
  /** Tag; `latest` when neither a tag nor a digest was given. */
  tag?: string;
  /** Manifest digest `sha256:<hex>` when pinned. */
  digest?: string;
}

const DOMAIN_COMPONENT = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const DOMAIN_RE = new RegExp(
  `^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[0-9a-fA-F:.]+\\])(?::[0-9]+)?$`,
);
const PATH_COMPONENT_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG_RE = /^[\w][\w.-]{0,127}$/;
const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;
const ID_RE = /^[a-f0-9]{64}$/;

/** Parses `NAME[:TAG][@DIGEST]` into a normalised reference (default tag `latest`). */
export function parseReference(text: string): Reference {
  const fail = (why: string) => new UserError(`Invalid reference format "${text}": ${why}`);
  if (text === "") throw fail("empty name");
  if (ID_RE.test(text)) throw fail("cannot use a 64-character hexadecimal string as a name");

  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST_RE.test(digest)) throw fail(`digest must look like sha256:<64 hex digits>`);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(":");
  if (colon > rest.lastIndexOf("/")) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) throw fail(`tag "${tag}" is not valid`);
  }

  const { domain, path } = splitDomain(rest);
  if (!DOMAIN_RE.test(domain)) throw fail(`registry host "${domain}" is not valid`);
  if (path !== path.toLowerCase()) throw fail("repository name must be lowercase");
  for (const component of path.split("/")) {
    if (!PATH_COMPONENT_RE.test(component)) {
      throw fail(`repository name component "${component}" is not valid`);
    }
  }
  if (domain.length + 1 + path.length > 255) throw fail("repository name is too long");
  if (tag === undefined && digest === undefined) tag = "latest";
  return { domain, path, tag, digest };
}

function splitDomain(name: string): { domain: string; path: string } {
  const slash = name.indexOf("/");
  let domain = DOCKER_HUB;
  let path = name;
  if (slash >= 0) {
    const first = name.slice(0, slash);
    if (/[.:]/.test(first) || first === "localhost" || first !== first.toLowerCase()) {
      domain = first;
      path = name.slice(slash + 1);
    }
  }
  if (domain === "index.docker.io") domain = DOCKER_HUB;
  if (domain === DOCKER_HUB && !path.includes("/")) path = `library/${path}`;
  return { domain, path };
}

/** `docker.io/library/alpine`: the repository's full name, the key of the image index. */
export function repositoryName(ref: Reference): string {
  return `${ref.domain}/${ref.path}`;
}

/** The full normalised form: `docker.io/library/alpine:latest`, `host/x@sha256:...`. */
export function formatReference(ref: Reference): string {
  let out = repositoryName(ref);
  if (ref.tag !== undefined) out += `:${ref.tag}`;
  if (ref.digest !== undefined) out += `@${ref.digest}`;
  return out;
}

/** The short name Docker shows: `alpine` for `docker.io/library/alpine`, `user/x` for Hub users. */
export function familiarName(repository: string): string {
  const prefix = `${DOCKER_HUB}/`;
  if (!repository.startsWith(prefix)) return repository;
  const path = repository.slice(prefix.length);
  return path.startsWith("library/") && path.indexOf("/", 8) < 0 ? path.slice(8) : path;
}

/** Host (and port) to connect to: Docker Hub's API lives on registry-1.docker.io. */
export function registryEndpoint(domain: string): string {
  return domain === DOCKER_HUB ? DOCKER_HUB_ENDPOINT : domain;
}

/** True for hosts that never leave this machine: localhost, 127.0.0.0/8, ::1. */
export function isLoopbackHost(domain: string): boolean {
  let host = domain;
  if (host.startsWith("[")) host = host.slice(1, host.indexOf("]"));
  else if (host.includes(":")) host = host.slice(0, host.lastIndexOf(":"));
  host = host.toLowerCase();
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}
