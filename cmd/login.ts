/**
 * `login [-u USER] [-p PASS | --password-stdin] [SERVER]` and `logout [SERVER]`: registry
 * credentials in Docker's config.json (`$DOCKER_CONFIG`, else `~/.docker`), checked against the
 * registry before they are saved. Docker Hub when no server is named.
 */

import { Command } from "@commander-js/extra-typings";
import { EXIT_FAILURE, UserError } from "../base/errors.ts";
import {
  configPath,
  normalizeServer,
  removeCredentials,
  saveCredentials,
  serverKey,
} from "../images/auth.ts";
import { RegistryClient } from "../images/registry.ts";

async function readStdin(): Promise<string> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of Deno.stdin.readable) chunks.push(chunk);
  const text = new TextDecoder().decode(
    chunks.reduce((a, b) => {
      const out = new Uint8Array(a.byteLength + b.byteLength);
      out.set(a);
      out.set(b, a.byteLength);
      return out;
    }, new Uint8Array()),
  );
  return text.replace(/\r?\n$/, "");
}

/** One line typed at the terminal; without echo for a password. */
function ask(question: string, secret: boolean): string {
  Deno.stderr.writeSync(new TextEncoder().encode(question));
  if (secret) Deno.stdin.setRaw(true);
  try {
    const buf = new Uint8Array(1);
    let line = "";
    for (;;) {
      const n = Deno.stdin.readSync(buf);
      if (n === null || n === 0) break;
      const c = String.fromCharCode(buf[0]!);
      if (c === "\n" || c === "\r") break;
      if (c === "\x03") throw new UserError("Login cancelled", EXIT_FAILURE);
      line += c;
    }
    return line;
  } finally {
    if (secret) {
      Deno.stdin.setRaw(false);
      Deno.stderr.writeSync(new TextEncoder().encode("\n"));
    }
  }
}

export function loginCommand(out: (line: string) => void = (line) => console.log(line)) {
  return new Command("login")
    .description("Log in to a registry (Docker Hub by default)")
    .argument("[server]", "registry host[:port]")
    .option("-u, --username <username>", "user name")
    .option(
      "-p, --password <password>",
      "password (visible to other users: prefer --password-stdin)",
    )
    .option("--password-stdin", "read the password from standard input")
    .option("--insecure", "allow plain HTTP to a registry that is not on loopback")
    .addHelpText(
      "after",
      `
Credentials are saved in Docker's config.json: $DOCKER_CONFIG/config.json, else
~/.docker/config.json (mode 0600); pull and push use them.

Examples:
  echo "$TOKEN" | mini-docker login -u ci --password-stdin 127.0.0.1:5000`,
    )
    .action(async (server, opts) => {
      const domain = normalizeServer(server ?? "");
      if (opts.password !== undefined && opts.passwordStdin) {
        throw new UserError("--password and --password-stdin are mutually exclusive");
      }
      let username = opts.username;
      let password = opts.password;
      if (opts.passwordStdin) {
        if (username === undefined) {
          throw new UserError("Must provide --username with --password-stdin");
        }
        password = await readStdin();
      }
      if (username === undefined || password === undefined) {
        if (!Deno.stdin.isTerminal()) {
          throw new UserError(
            "Cannot perform an interactive login from a non TTY device (use -u and --password-stdin)",
            EXIT_FAILURE,
          );
        }
        username ??= ask("Username: ", false);
        password ??= ask("Password: ", true);
      }
      if (username === "") throw new UserError("Username is required", EXIT_FAILURE);
      if (password === "") throw new UserError("Password is required", EXIT_FAILURE);
      const creds = { username, password };
      try {
        await new RegistryClient(domain, "", { insecure: opts.insecure, credentials: creds })
          .login();
      } catch (err) {
        const why = err instanceof Error ? err.message : String(err);
        throw new UserError(`Cannot log in to ${serverKey(domain)}: ${why}`, EXIT_FAILURE);
      }
      saveCredentials(domain, creds);
      out("Login Succeeded");
    });
}

export function logoutCommand(out: (line: string) => void = (line) => console.log(line)) {
  return new Command("logout")
    .description("Log out from a registry (Docker Hub by default)")
    .argument("[server]", "registry host[:port]")
    .action((server) => {
      const domain = normalizeServer(server ?? "");
      if (!removeCredentials(domain)) {
        out(`Not logged in to ${serverKey(domain)}`);
        return;
      }
      out(`Removing login credentials for ${serverKey(domain)} (${configPath()})`);
    });
}
