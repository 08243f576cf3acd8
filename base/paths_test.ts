import assert from "node:assert/strict";
import { resolve } from "node:path";
import { absolutePath } from "./paths.ts";

Deno.test("absolutePath resolves as node:path's resolve does", () => {
  for (
    const p of [
      ".",
      "..",
      "a",
      "./a/b/",
      "a/../../b",
      "/",
      "//x//y/",
      "/a/./b/../c",
      "../../../..",
      "",
    ]
  ) {
    assert.equal(absolutePath(p), resolve(p), JSON.stringify(p));
  }
});
