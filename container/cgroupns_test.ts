import assert from "node:assert/strict";
import { exclusive, quiet } from "./cgroupns.ts";

Deno.test("cgroupns: exclusive() lets one holder in at a time, however many wait at once", async () => {
  let inside = 0;
  let most = 0;
  await Promise.all([0, 1, 2, 3, 4].map(async () => {
    const done = await exclusive();
    inside++;
    most = Math.max(most, inside);
    await new Promise((r) => setTimeout(r, 5));
    inside--;
    done();
  }));
  assert.equal(most, 1);
  await quiet(); // nothing is left open
});
