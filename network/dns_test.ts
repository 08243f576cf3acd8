import assert from "node:assert/strict";
import { answers, dnsQuery } from "./dns.ts";

Deno.test("dnsQuery: header, labels, type A class IN", () => {
  const q = dnsQuery("web.app", 0x1234);
  assert.deepEqual([...q.slice(0, 6)], [0x12, 0x34, 0x01, 0x00, 0x00, 0x01]);
  assert.deepEqual([...q.slice(12)], [3, 119, 101, 98, 3, 97, 112, 112, 0, 0, 1, 0, 1]);
});

Deno.test("answers: a reply to this id, no error, at least one record", () => {
  const reply = (id: number, flags: number, count: number) =>
    new Uint8Array([id >> 8, id & 255, flags >> 8, flags & 255, 0, 1, 0, count, 0, 0, 0, 0]);
  assert.ok(answers(reply(7, 0x8180, 1), 7));
  assert.ok(!answers(reply(8, 0x8180, 1), 7));
  assert.ok(!answers(reply(7, 0x8183, 0), 7)); // NXDOMAIN
  assert.ok(!answers(reply(7, 0x0100, 1), 7)); // a query, not a reply
  assert.ok(!answers(new Uint8Array(4), 7));
});
