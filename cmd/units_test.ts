import assert from "node:assert/strict";
import {
  bytesSize,
  formatBytes,
  formatCpuList,
  humanSize,
  mergeEnv,
  MIN_MEMORY,
  parseCpuList,
  parseCpus,
  parseCpuset,
  parseCpuShares,
  parseEnvEntry,
  parseEnvFile,
  parseLabel,
  parseMemory,
  parsePidsLimit,
  parseRestartPolicy,
} from "./units.ts";
import { UserError } from "../base/errors.ts";

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

Deno.test("parsePidsLimit: a count, or -1/0 for unlimited", () => {
  assert.equal(parsePidsLimit("20"), 20);
  assert.equal(parsePidsLimit(" 1 "), 1);
  assert.equal(parsePidsLimit("-1"), -1);
  assert.equal(parsePidsLimit("0"), -1);
  assert.throws(() => parsePidsLimit("x"), /^UserError: Cannot parse PIDs limit "x": expected/);
  assert.throws(() => parsePidsLimit("1.5"), /Cannot parse PIDs limit "1.5"/);
  assert.throws(() => parsePidsLimit("-2"), /Invalid PIDs limit "-2"/);
  assert.throws(() => parsePidsLimit("99999999999999999999"), /too large/);
});

Deno.test("parseCpuShares: 2 to 262144, 0 for the default", () => {
  assert.equal(parseCpuShares("512"), 512);
  assert.equal(parseCpuShares("2"), 2);
  assert.equal(parseCpuShares("262144"), 262144);
  assert.equal(parseCpuShares("0"), undefined);
  assert.throws(() => parseCpuShares("1"), /Invalid CPU shares "1": expected 2 to 262144/);
  assert.throws(() => parseCpuShares("262145"), /Invalid CPU shares "262145"/);
  assert.throws(() => parseCpuShares("-5"), /Cannot parse CPU shares "-5"/);
  assert.throws(() => parseCpuShares("lots"), /Cannot parse CPU shares "lots"/);
});

Deno.test("parseCpuList and formatCpuList use the kernel's list format", () => {
  assert.deepEqual(parseCpuList("0-3,5"), [0, 1, 2, 3, 5]);
  assert.deepEqual(parseCpuList("5,0-1,1"), [0, 1, 5]);
  assert.deepEqual(parseCpuList("7\n"), [7]);
  for (const bad of ["", "a", "3-1", "1-", "-1", "1,,2", "0-99999"]) {
    assert.throws(() => parseCpuList(bad), /Cannot parse CPU list ".*": expected numbers/, bad);
  }
  assert.equal(formatCpuList([0, 1, 2, 3, 5]), "0-3,5");
  assert.equal(formatCpuList([0]), "0");
  assert.equal(formatCpuList([1, 3, 4]), "1,3-4");
  assert.equal(formatCpuList([]), "");
});

Deno.test("parseCpuset checks the list against what the host has", () => {
  const cpus = { flag: "--cpuset-cpus", unit: "CPU" };
  assert.equal(parseCpuset("0", "0-1", cpus), "0");
  assert.equal(parseCpuset("1,0", "0-1", cpus), "0-1");
  assert.equal(parseCpuset("0-3,5", "0-7", cpus), "0-3,5");
  assert.throws(
    () => parseCpuset("99", "0-1", cpus),
    /^UserError: Invalid --cpuset-cpus "99": CPU 99 not available on this host, which has CPUs 0-1$/,
  );
  assert.throws(
    () => parseCpuset("0-3", "0-1\n", cpus),
    /Invalid --cpuset-cpus "0-3": CPUs 2-3 not available on this host, which has CPUs 0-1$/,
  );
  assert.throws(() => parseCpuset("x", "0-1", cpus), /Cannot parse --cpuset-cpus value "x"/);
  const mems = { flag: "--cpuset-mems", unit: "memory node" };
  assert.throws(() => parseCpuset("1", "0", mems), /memory node 1 not available.*memory nodes 0/);
});

Deno.test("bytesSize and humanSize print as docker stats does", () => {
  assert.equal(bytesSize(0), "0B");
  assert.equal(bytesSize(1023), "1023B");
  assert.equal(bytesSize(5.297 * 1024 ** 2), "5.297MiB");
  assert.equal(bytesSize(64 * 1024 ** 2), "64MiB");
  assert.equal(bytesSize(7.6074 * 1024 ** 3), "7.607GiB");
  assert.equal(bytesSize(1536), "1.5KiB");
  assert.equal(humanSize(0), "0B");
  assert.equal(humanSize(648), "648B");
  assert.equal(humanSize(1234), "1.23kB");
  assert.equal(humanSize(15_600_000), "15.6MB");
  assert.equal(humanSize(2_000_000_000), "2GB");
});

Deno.test("MIN_MEMORY is Docker's 6 MiB", () => {
  assert.equal(MIN_MEMORY, 6_291_456);
});

Deno.test("--restart: Docker's policies; a retry count only with on-failure", () => {
  assert.deepEqual(parseRestartPolicy("no"), { name: "no", maximumRetryCount: 0 });
  assert.deepEqual(parseRestartPolicy("always"), { name: "always", maximumRetryCount: 0 });
  assert.deepEqual(parseRestartPolicy("unless-stopped"), {
    name: "unless-stopped",
    maximumRetryCount: 0,
  });
  assert.deepEqual(parseRestartPolicy("on-failure"), { name: "on-failure", maximumRetryCount: 0 });
  assert.deepEqual(parseRestartPolicy("on-failure:3"), {
    name: "on-failure",
    maximumRetryCount: 3,
  });
  for (const bad of ["sometimes", "always:3", "on-failure:x", "on-failure:1:2", ""]) {
    assert.throws(() => parseRestartPolicy(bad), /^UserError: Invalid restart policy /, bad);
  }
});

Deno.test("--label: KEY=VALUE, KEY alone is an empty value", () => {
  assert.deepEqual(parseLabel("a=b=c"), ["a", "b=c"]);
  assert.deepEqual(parseLabel("flag"), ["flag", ""]);
  assert.throws(() => parseLabel("=x"), /^UserError: Invalid label "=x": expected KEY=VALUE$/);
  assert.throws(() => parseLabel("a\nb=1"), /^UserError: Invalid label "a\\nb=1"/);
});
