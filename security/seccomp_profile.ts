/**
 * Docker's seccomp profiles: the JSON format of `--security-opt seccomp=PROFILE.json` and of
 * Docker's default profile (seccomp_default.json), checked when read, then resolved for one
 * container into the OCI filter that seccomp.ts compiles. Resolution follows moby's
 * profiles/seccomp (setupSeccomp): `archMap` gives the native architecture and its companions,
 * and each entry stays or goes by its `includes`/`excludes` on the container's capabilities, the
 * machine's architecture and the running kernel's version.
 */
import { UserError } from "../base/errors.ts";
import type { LinuxSeccomp, LinuxSyscall } from "../base/spec.ts";
import {
  SECCOMP_ACTIONS,
  SECCOMP_ARCHITECTURES,
  SECCOMP_FLAGS,
  SECCOMP_OPERATORS,
} from "./seccomp.ts";

/** A kernel version as `minKernel` gives it: "4.8" is { kernel: 4, major: 8 }. */
export interface KernelVersion {
  kernel: number;
  major: number;
}

/** `includes` / `excludes` of a profile entry. */
export interface SeccompCondition {
  /** Capability names ("CAP_SYS_ADMIN"): includes needs all of them, excludes any one. */
  caps?: string[];
  /** Go's architecture names ("amd64", "arm64", "x32", ...), as moby compares them. */
  arches?: string[];
  minKernel?: KernelVersion;
}

/** One entry of `syscalls`; `name` (older profiles) is folded into `names`. */
export interface DockerSyscall extends LinuxSyscall {
  comment?: string;
  includes?: SeccompCondition;
  excludes?: SeccompCondition;
}

/** One entry of `archMap`: a native architecture and those its processes may also use. */
export interface SeccompArchMap {
  architecture: string;
  subArchitectures: string[];
}

/** A Docker seccomp profile, checked (names known, numbers in range) and normalized. */
export interface DockerSeccompProfile {
  /** Where it came from, for messages: a path. */
  source: string;
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures?: string[];
  archMap?: SeccompArchMap[];
  flags?: string[];
  syscalls: DockerSyscall[];
}

/** Parses and validates a Docker JSON profile; UserError (exit 125) naming the file and what is wrong. */
export function parseSeccompProfile(text: string, source: string): DockerSeccompProfile {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    const { line, column, expected } = locateJsonError(text);
    throw new UserError(
      `Cannot parse seccomp profile "${source}": malformed JSON at line ${line}, column ${column}: expected ${expected}`,
    );
  }
  try {
    return checkProfile(json, source);
  } catch (err) {
    if (!(err instanceof Invalid)) throw err;
    throw new UserError(`Invalid seccomp profile "${source}": ${err.message}`);
  }
}

/** Reads a profile file; UserError "Cannot read seccomp profile \"PATH\": ..." when it cannot be read. */
export function readSeccompProfile(path: string): DockerSeccompProfile {
  return parseSeccompProfile(readProfileText(path, path), path);
}

const DEFAULT_PROFILE = new URL("./seccomp_default.json", import.meta.url);

/** Docker's default profile (seccomp_default.json, beside this module). */
export function defaultSeccompProfile(): DockerSeccompProfile {
  const path = decodeURIComponent(DEFAULT_PROFILE.pathname);
  return parseSeccompProfile(readProfileText(DEFAULT_PROFILE, path), path);
}

function readProfileText(file: string | URL, path: string): string {
  try {
    return Deno.readTextFileSync(file);
  } catch (err) {
    // Deno's "No such file or directory (os error 2): readfile '/x'" without the repetition.
    const detail = (err instanceof Error ? err.message : String(err)).replace(/ \(os error.*$/, "");
    throw new UserError(`Cannot read seccomp profile "${path}": ${detail}`);
  }
}

/** The machine a filter is resolved for: its seccomp and Go names, as moby's tables pair them. */
const NATIVE = {
  x86_64: { seccomp: "SCMP_ARCH_X86_64", go: "amd64" },
  aarch64: { seccomp: "SCMP_ARCH_AARCH64", go: "arm64" },
} as const;

/**
 * Resolves a profile for one container: its capabilities decide the includes/excludes, as moby
 * does. `arch` and `kernel` (a release such as "6.1.0-18-amd64") default to this machine's.
 */
export function resolveSeccomp(
  profile: DockerSeccompProfile,
  opts: { capabilities: readonly string[]; arch?: "x86_64" | "aarch64"; kernel?: string },
): LinuxSeccomp {
  const native = NATIVE[opts.arch ?? (Deno.build.arch as "x86_64" | "aarch64")];
  if (native === undefined) {
    throw new UserError(
      `Seccomp is not supported on "${Deno.build.arch}": only x86_64 and aarch64`,
    );
  }
  const caps = new Set(opts.capabilities);
  let running: KernelVersion | undefined;
  // Read once, and only when an entry asks, as moby does.
  const kernelAtLeast = (min: KernelVersion): boolean => {
    running ??= kernelVersion(opts.kernel ?? Deno.osRelease());
    return running.kernel > min.kernel ||
      (running.kernel === min.kernel && running.major >= min.major);
  };

  const excluded = (c: SeccompCondition | undefined): boolean =>
    c !== undefined && (
      (c.arches ?? []).includes(native.go) ||
      (c.caps ?? []).some((cap) => caps.has(cap)) ||
      (c.minKernel !== undefined && kernelAtLeast(c.minKernel))
    );
  const included = (c: SeccompCondition | undefined): boolean =>
    c === undefined || (
      (c.arches === undefined || c.arches.length === 0 || c.arches.includes(native.go)) &&
      (c.caps ?? []).every((cap) => caps.has(cap)) &&
      (c.minKernel === undefined || kernelAtLeast(c.minKernel))
    );

  const architectures = [...profile.architectures ?? []];
  const mapped = profile.archMap?.find((a) => a.architecture === native.seccomp);
  if (mapped) architectures.push(mapped.architecture, ...mapped.subArchitectures);

  const syscalls: LinuxSyscall[] = [];
  for (const call of profile.syscalls) {
    if (excluded(call.excludes) || !included(call.includes)) continue;
    const out: LinuxSyscall = { names: [...call.names], action: call.action };
    if (call.errnoRet !== undefined) out.errnoRet = call.errnoRet;
    if (call.args !== undefined) out.args = call.args.map((a) => ({ ...a }));
    syscalls.push(out);
  }

  const filter: LinuxSeccomp = { defaultAction: profile.defaultAction, syscalls };
  if (profile.defaultErrnoRet !== undefined) filter.defaultErrnoRet = profile.defaultErrnoRet;
  if (architectures.length > 0) filter.architectures = architectures;
  if (profile.flags !== undefined) filter.flags = [...profile.flags];
  return filter;
}

/** "6.1.0-18-amd64" -> { kernel: 6, major: 1 }: the first two numbers, as moby reads them. */
function kernelVersion(release: string): KernelVersion {
  const m = /^(\d+)\.(\d+)/.exec(release);
  if (!m) {
    throw new UserError(
      `Cannot parse kernel release "${release}": expected "<kernel>.<major>", for seccomp's minKernel`,
    );
  }
  return { kernel: Number(m[1]), major: Number(m[2]) };
}

/** A problem in a profile's content: `path` says where ("syscalls[3].action"). */
class Invalid extends Error {}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** An optional array (JSON null counts as absent, as in Go); each item checked by `item`. */
function array<T>(
  v: unknown,
  path: string,
  item: (x: unknown, path: string) => T,
): T[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw new Invalid(`${path} must be an array`);
  return v.map((x, i) => item(x, `${path}[${i}]`));
}

function string(v: unknown, path: string): string {
  if (typeof v !== "string") throw new Invalid(`${path} must be a string`);
  return v;
}

function oneOf(known: readonly string[], what: string) {
  return (v: unknown, path: string): string => {
    const s = string(v, path);
    if (!known.includes(s)) throw new Invalid(`unknown ${what} "${s}" at ${path}`);
    return s;
  };
}

const action = oneOf(SECCOMP_ACTIONS, "action");
const architecture = oneOf(SECCOMP_ARCHITECTURES, "architecture");
const flag = oneOf(SECCOMP_FLAGS, "flag");
const operator = oneOf(SECCOMP_OPERATORS, "operator");

/** A whole number from 0 to `max`; a value JavaScript cannot hold exactly is refused. */
function integer(v: unknown, path: string, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > max) {
    const limit = max === Number.MAX_SAFE_INTEGER ? "2^53-1" : String(max);
    throw new Invalid(
      `${path} must be a whole number from 0 to ${limit}, not ${JSON.stringify(v)}`,
    );
  }
  return v;
}

/** errnoRet: SECCOMP_RET_DATA holds 16 bits. */
const errno = (v: unknown, path: string) => integer(v, path, 0xffff);

function checkProfile(json: unknown, source: string): DockerSeccompProfile {
  if (!isObject(json)) throw new Invalid("expected a JSON object");
  if (typeof json.listenerPath === "string" && json.listenerPath !== "") {
    throw new Invalid(
      `listenerPath "${json.listenerPath}" is not supported: mini-docker has no seccomp agent`,
    );
  }
  const syscalls = array(json.syscalls, "syscalls", checkSyscall) ?? [];
  if (json.defaultAction === undefined || json.defaultAction === "") {
    // moby reads a profile without one as "no filter at all": say so rather than run unconfined.
    throw new Invalid(
      "defaultAction is missing (to run without a filter, use --security-opt seccomp=unconfined)",
    );
  }
  const profile: DockerSeccompProfile = {
    source,
    defaultAction: action(json.defaultAction, "defaultAction"),
    syscalls,
  };
  if (profile.defaultAction === "SCMP_ACT_NOTIFY") throw notify("defaultAction");
  if (json.defaultErrnoRet !== undefined && json.defaultErrnoRet !== null) {
    profile.defaultErrnoRet = errno(json.defaultErrnoRet, "defaultErrnoRet");
  }
  const architectures = array(json.architectures, "architectures", architecture);
  const archMap = array(json.archMap, "archMap", (v, path) => {
    if (!isObject(v)) throw new Invalid(`${path} must be an object`);
    return {
      architecture: architecture(v.architecture, `${path}.architecture`),
      subArchitectures: array(v.subArchitectures, `${path}.subArchitectures`, architecture) ?? [],
    };
  });
  if (architectures?.length && archMap?.length) {
    throw new Invalid("both architectures and archMap are given: use one of them");
  }
  if (architectures !== undefined) profile.architectures = architectures;
  if (archMap !== undefined) profile.archMap = archMap;
  const flags = array(json.flags, "flags", flag);
  if (flags !== undefined) profile.flags = flags;
  return profile;
}

function notify(path: string): Invalid {
  return new Invalid(
    `SCMP_ACT_NOTIFY at ${path} is not supported: mini-docker has no seccomp agent`,
  );
}

function checkSyscall(v: unknown, path: string): DockerSyscall {
  if (!isObject(v)) throw new Invalid(`${path} must be an object`);
  const name = v.name === undefined || v.name === null ? "" : string(v.name, `${path}.name`);
  let names = array(v.names, `${path}.names`, string) ?? [];
  if (name !== "") {
    if (names.length > 0) throw new Invalid(`${path} has both name and names: use one of them`);
    names = [name];
  }
  if (names.length === 0 || names.includes("")) {
    throw new Invalid(`${path} names no system call`);
  }
  if (v.action === undefined) throw new Invalid(`${path} has no action`);
  const call: DockerSyscall = { names, action: action(v.action, `${path}.action`) };
  if (call.action === "SCMP_ACT_NOTIFY") throw notify(`${path}.action`);
  if (v.errnoRet !== undefined && v.errnoRet !== null) {
    call.errnoRet = errno(v.errnoRet, `${path}.errnoRet`);
  }
  const args = array(v.args, `${path}.args`, (a, p) => {
    if (!isObject(a)) throw new Invalid(`${p} must be an object`);
    return {
      index: integer(a.index, `${p}.index`, 5),
      value: integer(a.value ?? 0, `${p}.value`),
      valueTwo: integer(a.valueTwo ?? 0, `${p}.valueTwo`),
      op: operator(a.op, `${p}.op`),
    };
  });
  if (args !== undefined && args.length > 0) call.args = args;
  if (typeof v.comment === "string") call.comment = v.comment;
  const includes = condition(v.includes, `${path}.includes`);
  if (includes) call.includes = includes;
  const excludes = condition(v.excludes, `${path}.excludes`);
  if (excludes) call.excludes = excludes;
  return call;
}

function condition(v: unknown, path: string): SeccompCondition | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObject(v)) throw new Invalid(`${path} must be an object`);
  const c: SeccompCondition = {};
  const caps = array(v.caps, `${path}.caps`, string);
  if (caps !== undefined) c.caps = caps;
  const arches = array(v.arches, `${path}.arches`, string);
  if (arches !== undefined) c.arches = arches;
  if (v.minKernel !== undefined && v.minKernel !== null && v.minKernel !== "") {
    c.minKernel = minKernel(v.minKernel, `${path}.minKernel`);
  }
  return c;
}

/** "4.8": two numbers below 256, not both 0 (moby's KernelVersion.UnmarshalJSON). */
function minKernel(v: unknown, path: string): KernelVersion {
  const s = string(v, path);
  const m = /^(\d{1,3})\.(\d{1,3})$/.exec(s);
  const version = m ? { kernel: Number(m[1]), major: Number(m[2]) } : undefined;
  if (
    !version || version.kernel > 255 || version.major > 255 ||
    (version.kernel === 0 && version.major === 0)
  ) {
    throw new Invalid(`invalid kernel version "${s}" at ${path}: expected "<kernel>.<major>"`);
  }
  return version;
}

/**
 * Where JSON.parse gave up, and what it wanted there: V8's message gives a position for some
 * errors only, and quotes the whole text for others, so a small scanner finds the spot itself.
 */
function locateJsonError(text: string): { line: number; column: number; expected: string } {
  let i = 0;
  const fail = (expected: string): never => {
    throw { at: i, expected };
  };
  const space = () => {
    while (i < text.length && " \t\n\r".includes(text[i]!)) i++;
  };
  const literal = (word: string) => text.startsWith(word, i) ? (i += word.length) : fail("a value");
  const str = () => {
    i++; // the opening quote
    while (i < text.length && text[i] !== '"') {
      if (text.charCodeAt(i) < 0x20) fail("a closing quote");
      if (text[i] === "\\") {
        i++;
        if (text[i] === "u") {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 1, i + 5))) fail("4 hex digits");
          i += 4;
        } else if (i >= text.length || !'"\\/bfnrt'.includes(text[i]!)) {
          fail('an escape such as \\n or \\"');
        }
      }
      i++;
    }
    if (i >= text.length) fail("a closing quote");
    i++;
  };
  const value = (): void => {
    space();
    const c = text[i];
    if (c === "{") {
      i++;
      space();
      if (text[i] === "}") return void i++;
      for (;;) {
        space();
        if (text[i] !== '"') fail("a property name in double quotes");
        str();
        space();
        if (text[i] !== ":") fail("':' after the property name");
        i++;
        value();
        space();
        if (text[i] === ",") i++;
        else if (text[i] === "}") return void i++;
        else fail("',' or '}'");
      }
    } else if (c === "[") {
      i++;
      space();
      if (text[i] === "]") return void i++;
      for (;;) {
        value();
        space();
        if (text[i] === ",") i++;
        else if (text[i] === "]") return void i++;
        else fail("',' or ']'");
      }
    } else if (c === '"') {
      str();
    } else if (c === "t") literal("true");
    else if (c === "f") literal("false");
    else if (c === "n") literal("null");
    else {
      const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i));
      if (!m) fail("a value");
      i += m![0].length;
    }
  };
  let at = text.length;
  let expected = "a value";
  try {
    value();
    space();
    if (i < text.length) fail("the end of the text");
  } catch (e) {
    ({ at, expected } = e as { at: number; expected: string });
  }
  const before = text.slice(0, at).split("\n");
  return { line: before.length, column: before.at(-1)!.length + 1, expected };
}
