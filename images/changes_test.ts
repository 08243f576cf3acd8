import assert from "node:assert/strict";
import { applyChanges, type ConfigObject } from "./changes.ts";
import { UserError } from "../base/errors.ts";

Deno.test("changes: Dockerfile instructions on a config, as Docker's commit applies them", () => {
  const config: ConfigObject = {
    Env: ["PATH=/bin", "A=1"],
    Cmd: ["sh"],
    Entrypoint: null,
    WorkingDir: "/srv",
    Labels: { keep: "yes" },
  };
  applyChanges(config, [
    'CMD ["echo", "hi"]',
    "ENV A=2 B='two words' C=\"x y\"",
    "ENV D some value",
    "WORKDIR sub",
    "user nobody",
    "EXPOSE 80 53/udp 8000-8001",
    'LABEL version=1 "with space"=ok',
    'VOLUME ["/data", "/logs"]',
    "STOPSIGNAL SIGQUIT",
  ]);
  assert.deepEqual(config, {
    Env: ["PATH=/bin", "A=2", "B=two words", "C=x y", "D=some value"],
    Cmd: ["echo", "hi"],
    Entrypoint: null,
    WorkingDir: "/srv/sub",
    Labels: { keep: "yes", version: "1", "with space": "ok" },
    User: "nobody",
    ExposedPorts: { "80/tcp": {}, "53/udp": {}, "8000/tcp": {}, "8001/tcp": {} },
    Volumes: { "/data": {}, "/logs": {} },
    StopSignal: "SIGQUIT",
  });
  // Shell form; a new ENTRYPOINT drops an inherited CMD but not one given before it.
  const a: ConfigObject = { Cmd: ["inherited"] };
  applyChanges(a, ["ENTRYPOINT exec httpd -f"]);
  assert.deepEqual(a, { Entrypoint: ["/bin/sh", "-c", "exec httpd -f"], Cmd: null });
  const b: ConfigObject = { Cmd: ["inherited"] };
  applyChanges(b, ['CMD ["-p", "80"]', 'ENTRYPOINT ["httpd"]']);
  assert.deepEqual(b, { Cmd: ["-p", "80"], Entrypoint: ["httpd"] });
});

Deno.test("changes: what Docker refuses is refused, one line", () => {
  for (
    const [change, why] of [
      ["FROM alpine", /FROM is not supported/],
      ["RUN echo", /RUN is not supported/],
      ["ONBUILD RUN x", /ONBUILD is not supported/],
      ["CMD", /CMD needs an argument/],
      ["EXPOSE web", /"web" is not a port/],
      ["EXPOSE 70000", /out of range/],
      ["ENV =x", /is not KEY=VALUE/],
      ["LABEL a='open", /unterminated quote/],
      ['VOLUME ["/a", 1]', /not a JSON array of strings/],
      ["", /expected an instruction/],
    ] as const
  ) {
    assert.throws(() => applyChanges({}, [change]), (err: unknown) => {
      assert.ok(err instanceof UserError);
      assert.equal(err.exitCode, 1);
      assert.match(err.message, why);
      assert.doesNotMatch(err.message, /\n/);
      return true;
    });
  }
});
