import assert from "node:assert/strict";
import {
  formatBytes,
  mergeEnv,
  parseCpus,
  parseEnvEntry,
  parseEnvFile,
  parseMemory,
} from "./units.ts";
import { UserError } from "./errors.ts";

Deno.test("parseMemory reads Docker's units", () => {
  const cases: [string, number][] = [
    ["100", 100],
    ["100b", 100],
    ["512k", 512 * 1024],
    ["512K", 512 * 1024],
    ["100M", 100 * 1024 ** 2],
    ["100m", 100 * 1024 ** 2],
    ["100MB", 100 * 1024 ** 2],
    ["100MiB", 100 * 1024 ** 2],
    ["100 m", 100 * 1024 ** 2],
    ["1.5g", 1.5 * 1024 ** 3],
    ["2G", 2 * 1024 ** 3],
    ["1t", 1024 ** 4],
  ];
  for (const [text, bytes] of cases) assert.equal(parseMemory(text), bytes, text);
});

Deno.test("parseMemory rejects what Docker rejects, with a clear message", () => {
  for (const text of ["lots", "", "-1m", "10x", "m", "1.2.3m", "10mm"]) {
    assert.throws(() => parseMemory(text), (e: unknown) => {
      assert.ok(e instanceof UserError);
      assert.equal(e.exitCode, 125);
      assert.match(e.message, /^Cannot parse memory size ".*": expected a number/);
      return true;
    }, text);
  }
});

Deno.test("formatBytes prints binary units", () => {
  assert.equal(formatBytes(50 * 1024 ** 2), "50MiB");
  assert.equal(formatBytes(1.5 * 1024 ** 3), "1.5GiB");
  assert.equal(formatBytes(100), "100B");
  assert.equal(formatBytes(1536), "1.5KiB");
});

Deno.test("parseCpus turns a decimal into a CFS quota", () => {
  assert.deepEqual(parseCpus("0.5", 2), { quota: 50_000, period: 100_000 });
  assert.deepEqual(parseCpus("1.0", 2), { quota: 100_000, period: 100_000 });
  assert.deepEqual(parseCpus("2", 2), { quota: 200_000, period: 100_000 });
  assert.deepEqual(parseCpus(".25", 2), { quota: 25_000, period: 100_000 });
  assert.deepEqual(parseCpus("0.01", 2), { quota: 1_000, period: 100_000 });
  assert.throws(() => parseCpus("0", 2), /must be greater than 0/);
  assert.throws(() => parseCpus("3", 2), /range of CPUs is from 0.01 to 2.00/);
  assert.throws(() => parseCpus("0.001", 2), /minimum is 0.01/);
  assert.throws(() => parseCpus("half", 2), /Cannot parse CPU count "half"/);
  assert.throws(() => parseCpus("-1", 2), /Cannot parse CPU count/);
});

Deno.test("env entries: KEY=VALUE as given, KEY alone from the host or dropped", () => {
  const host = (k: string) => ({ HOME: "/home/me" } as Record<string, string>)[k];
  assert.equal(parseEnvEntry("A=1", host), "A=1");
  assert.equal(parseEnvEntry("A=", host), "A=");
  assert.equal(parseEnvEntry("A=b=c", host), "A=b=c");
  assert.equal(parseEnvEntry("HOME", host), "HOME=/home/me");
  assert.equal(parseEnvEntry("UNSET", host), undefined);
  assert.throws(() => parseEnvEntry("=x", host), /Invalid environment variable "=x"/);
  assert.throws(() => parseEnvEntry("A B=1", host), /Invalid environment variable/);
});

Deno.test("env files: comments, blanks, literal quotes, host lookups", () => {
  const host = (k: string) => (k === "FROM_HOST" ? "h" : undefined);
  const text = '# comment\n\n  A=1\nB="quoted"\r\nFROM_HOST\nMISSING\nC=with spaces  \n';
  assert.deepEqual(parseEnvFile(text, "f", host), [
    "A=1",
    'B="quoted"',
    "FROM_HOST=h",
    "C=with spaces  ",
  ]);
  assert.throws(
    () => parseEnvFile("BAD KEY=1\n", "f.env", host),
    /Invalid env file "f.env" line 1/,
  );
});

Deno.test("mergeEnv: later entries win, order kept", () => {
  assert.deepEqual(mergeEnv(["PATH=/bin", "A=1"], ["A=2", "B=3"]), ["PATH=/bin", "A=2", "B=3"]);
});
