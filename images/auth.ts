/**
 * Registry credentials in Docker's `config.json` (`{"auths": {"SERVER": {"auth":
 * "base64(user:pass)"}}}`), at `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`, as
 * Docker keeps them; other keys of the file are kept as they are. Docker Hub's entry is named
 * `https://index.docker.io/v1/`, every other registry by its host[:port]. The file is written
 * whole (temp file + rename) with mode 0600.
 */

import { dirname, join } from "node:path";
import { Buffer } from "node:buffer";
import { UserError } from "../base/errors.ts";
import { DOCKER_HUB } from "./reference.ts";

/** A user name and password (or token) for a registry. */
export interface Credentials {
  username: string;
  password: string;
}

/** Docker Hub's key in config.json. */
export const DOCKER_HUB_SERVER = "https://index.docker.io/v1/";

/** Where the credentials live: Docker's rule. */
export function configPath(): string {
  const dir = Deno.env.get("DOCKER_CONFIG");
  if (dir !== undefined && dir !== "") return join(dir, "config.json");
  const home = Deno.env.get("HOME") ?? "/root";
  return join(home, ".docker", "config.json");
}

/** The registry host a `login SERVER` argument or a config.json key names (`docker.io` for Hub). */
export function normalizeServer(server: string): string {
  let host = server.replace(/^[a-z]+:\/\//i, "");
  host = host.split("/")[0]!.toLowerCase();
  if (["index.docker.io", "registry-1.docker.io", "docker.io", ""].includes(host)) {
    return DOCKER_HUB;
  }
  return host;
}

/** The key config.json uses for a registry host. */
export function serverKey(domain: string): string {
  return domain === DOCKER_HUB ? DOCKER_HUB_SERVER : domain;
}

// deno-lint-ignore no-explicit-any
type ConfigFile = Record<string, any>;

function readConfig(): ConfigFile {
  const path = configPath();
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return {};
    throw new UserError(`Cannot read "${path}": ${(err as Error).message}`);
  }
  try {
    const doc = JSON.parse(text);
    if (doc === null || typeof doc !== "object" || Array.isArray(doc)) {
      throw new Error("not an object");
    }
    return doc;
  } catch (err) {
    throw new UserError(
      `"${path}" is not valid JSON (${(err as Error).message}): fix or remove it`,
    );
  }
}

function writeConfig(doc: ConfigFile): void {
  let path = configPath();
  // A config.json that is a symlink (dotfiles kept elsewhere) stays one: its target is written
  // (anew, renamed over it), as Docker's CLI does.
  try {
    if (Deno.lstatSync(path).isSymlink) path = Deno.realPathSync(path);
  } catch { /* none yet, or dangling: written in its place */ }
  Deno.mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${Deno.pid}.tmp`;
  try {
    Deno.writeTextFileSync(tmp, JSON.stringify(doc, null, "\t") + "\n", { mode: 0o600 });
    Deno.chmodSync(tmp, 0o600);
    Deno.renameSync(tmp, path);
  } catch (err) {
    try {
      Deno.removeSync(tmp);
    } catch { /* not written */ }
    throw new UserError(`Cannot write "${path}": ${(err as Error).message}`);
  }
}

/** The credentials saved for a registry host, if any. */
export function readCredentials(domain: string): Credentials | undefined {
  const auths = readConfig().auths;
  if (auths === null || typeof auths !== "object") return undefined;
  for (const [key, entry] of Object.entries(auths as Record<string, { auth?: string }>)) {
    if (normalizeServer(key) !== domain || typeof entry?.auth !== "string") continue;
    const text = Buffer.from(entry.auth, "base64").toString("utf8");
    const colon = text.indexOf(":");
    if (colon <= 0) continue;
    return { username: text.slice(0, colon), password: text.slice(colon + 1) };
  }
  return undefined;
}

/** Saves credentials for a registry host (replacing any entry that names the same host). */
export function saveCredentials(domain: string, creds: Credentials): void {
  const doc = readConfig();
  const auths: Record<string, unknown> = doc.auths && typeof doc.auths === "object"
    ? doc.auths
    : {};
  for (const key of Object.keys(auths)) if (normalizeServer(key) === domain) delete auths[key];
  auths[serverKey(domain)] = {
    auth: Buffer.from(`${creds.username}:${creds.password}`, "utf8").toString("base64"),
  };
  doc.auths = auths;
  writeConfig(doc);
}

/** Removes a registry host's credentials; false when there were none. */
export function removeCredentials(domain: string): boolean {
  const doc = readConfig();
  const auths = doc.auths && typeof doc.auths === "object" ? doc.auths : {};
  const keys = Object.keys(auths).filter((k) => normalizeServer(k) === domain);
  if (keys.length === 0) return false;
  for (const key of keys) delete auths[key];
  writeConfig(doc);
  return true;
}

/** `Basic base64(user:pass)`. */
export function basicAuth(creds: Credentials): string {
  return `Basic ${Buffer.from(`${creds.username}:${creds.password}`, "utf8").toString("base64")}`;
}
