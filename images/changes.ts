/**
 * `commit --change`: Dockerfile instructions applied to an image's runtime config, as Docker's
 * commit applies them: CMD, ENTRYPOINT (JSON or shell form), ENV, WORKDIR, USER, EXPOSE,
 * LABEL, VOLUME, STOPSIGNAL. Anything else is refused, as Docker refuses it.
 */

import { UserError } from "../base/errors.ts";

/** An image config's `config` object (Docker's capitalised keys), edited in place. */
export type ConfigObject = Record<string, unknown>;

const ALLOWED = [
  "CMD",
  "ENTRYPOINT",
  "ENV",
  "EXPOSE",
  "LABEL",
  "ONBUILD",
  "STOPSIGNAL",
  "USER",
  "VOLUME",
  "WORKDIR",
];

/** Applies each change line to `config`; throws one UserError line for a bad one. */
export function applyChanges(config: ConfigObject, changes: readonly string[]): void {
  let cmdSet = false;
  for (const line of changes) {
    const match = /^\s*([A-Za-z]+)(?:\s+([\s\S]*))?$/.exec(line);
    const bad = (why: string) => new UserError(`Invalid --change "${line}": ${why}`, 1);
    if (match === null) throw bad('expected an instruction, e.g. CMD ["sh"]');
    const instruction = match[1]!.toUpperCase();
    const rest = (match[2] ?? "").trim();
    if (!ALLOWED.includes(instruction) || instruction === "ONBUILD") {
      throw bad(
        `${instruction} is not supported (use one of ${
          ALLOWED.filter((a) => a !== "ONBUILD").join(", ")
        })`,
      );
    }
    if (rest === "") throw bad(`${instruction} needs an argument`);
    switch (instruction) {
      case "CMD":
        config.Cmd = commandForm(rest, bad);
        cmdSet = true;
        break;
      case "ENTRYPOINT":
        config.Entrypoint = commandForm(rest, bad);
        // As in a Dockerfile: a new entrypoint drops an inherited CMD, not one given before it.
        if (!cmdSet) config.Cmd = null;
        break;
      case "ENV": {
        const env = [...(Array.isArray(config.Env) ? config.Env as string[] : [])];
        for (const [key, value] of keyValues(rest, bad, "ENV")) {
          const i = env.findIndex((e) => e.split("=")[0] === key);
          if (i >= 0) env[i] = `${key}=${value}`;
          else env.push(`${key}=${value}`);
        }
        config.Env = env;
        break;
      }
      case "LABEL": {
        const labels = { ...(config.Labels as Record<string, string> | null ?? {}) };
        for (const [key, value] of keyValues(rest, bad, "LABEL")) labels[key] = value;
        config.Labels = labels;
        break;
      }
      case "WORKDIR": {
        const dir = words(rest, bad).join(" ");
        const base = typeof config.WorkingDir === "string" && config.WorkingDir !== ""
          ? config.WorkingDir
          : "/";
        config.WorkingDir = dir.startsWith("/") ? dir : `${base.replace(/\/$/, "")}/${dir}`;
        break;
      }
      case "USER":
        config.User = words(rest, bad).join(" ");
        break;
      case "STOPSIGNAL":
        config.StopSignal = words(rest, bad).join(" ");
        break;
      case "EXPOSE": {
        const ports = { ...(config.ExposedPorts as Record<string, unknown> | null ?? {}) };
        for (const p of words(rest, bad)) {
          const m = /^(\d{1,5})(?:-(\d{1,5}))?(?:\/(tcp|udp|sctp))?$/i.exec(p);
          if (m === null) throw bad(`"${p}" is not a port (PORT[-PORT][/tcp|udp|sctp])`);
          const first = Number(m[1]);
          const last = m[2] === undefined ? first : Number(m[2]);
          if (first < 1 || last > 65535 || last < first) throw bad(`"${p}" is out of range`);
          for (let n = first; n <= last; n++) ports[`${n}/${(m[3] ?? "tcp").toLowerCase()}`] = {};
        }
        config.ExposedPorts = ports;
        break;
      }
      case "VOLUME": {
        const volumes = { ...(config.Volumes as Record<string, unknown> | null ?? {}) };
        const list = rest.startsWith("[") ? jsonArray(rest, bad) : words(rest, bad);
        for (const v of list) volumes[v] = {};
        config.Volumes = volumes;
        break;
      }
    }
  }
}

/** `["a","b"]` as given, or the shell form `/bin/sh -c "<text>"`. */
function commandForm(text: string, bad: (why: string) => UserError): string[] {
  if (text.startsWith("[")) {
    try {
      return jsonArray(text, bad);
    } catch {
      // Docker: not valid JSON means the shell form.
    }
  }
  return ["/bin/sh", "-c", text];
}

function jsonArray(text: string, bad: (why: string) => UserError): string[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw bad("not a JSON array of strings");
  }
  if (!Array.isArray(value) || !value.every((v) => typeof v === "string")) {
    throw bad("not a JSON array of strings");
  }
  return value;
}

/** `K=V K2="v 2"`, or the old form `K some value`. */
function keyValues(
  text: string,
  bad: (why: string) => UserError,
  what: string,
): [string, string][] {
  const first = words(text, bad);
  if (!first[0]!.includes("=")) {
    const key = first[0]!;
    const value = text.slice(text.indexOf(key) + key.length).trim();
    if (value === "") throw bad(`${what} ${key} has no value (use ${key}=VALUE)`);
    return [[key, unquote(value, bad)]];
  }
  return first.map((w) => {
    const eq = w.indexOf("=");
    if (eq <= 0) throw bad(`"${w}" is not KEY=VALUE`);
    return [w.slice(0, eq), w.slice(eq + 1)];
  });
}

function unquote(text: string, bad: (why: string) => UserError): string {
  return words(text, bad).join(" ");
}

/** Splits on blanks outside quotes; quotes removed, backslash escapes the next character. */
function words(text: string, bad: (why: string) => UserError): string[] {
  const out: string[] = [];
  let current = "";
  let has = false;
  let quote: string | null = null;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === "\\" && quote !== "'" && i + 1 < text.length) {
      current += text[++i];
      has = true;
    } else if (quote !== null) {
      if (c === quote) quote = null;
      else current += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      has = true;
    } else if (/\s/.test(c)) {
      if (has) out.push(current);
      current = "";
      has = false;
    } else {
      current += c;
      has = true;
    }
  }
  if (quote !== null) throw bad("unterminated quote");
  if (has) out.push(current);
  if (out.length === 0) throw bad("no argument");
  return out;
}
