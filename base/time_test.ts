import assert from "node:assert/strict";
import { parseTime, timestamp } from "./time.ts";

Deno.test("timestamp: Go's RFC3339Nano in UTC (trailing zeros dropped), read back by parseTime", () => {
  const base = Date.parse("2024-05-01T12:00:00.123Z");
  assert.equal(timestamp(base + 0.4564), "2024-05-01T12:00:00.123456Z");
  assert.equal(timestamp(base + 0.4), "2024-05-01T12:00:00.1234Z");
  assert.equal(timestamp(Date.parse("2024-05-01T12:00:00.100Z")), "2024-05-01T12:00:00.1Z");
  assert.equal(timestamp(Date.parse("2024-05-01T12:00:00Z")), "2024-05-01T12:00:00Z");
  assert.match(timestamp(), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$/);
  assert.equal(parseTime(timestamp(base + 0.4564)), base);
});
