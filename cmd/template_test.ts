import assert from "node:assert/strict";
import { Template, TemplateParseError } from "./template.ts";
import { UserError } from "../base/errors.ts";

const inspect = {
  Id: "abc",
  State: { Status: "running", ExitCode: 0, OOMKilled: false, Pid: 42 },
  Config: {
    Cmd: ["sleep", "300"],
    Entrypoint: null,
    Labels: { b: "2", a: "1" },
    Env: ["A=1", "B=2"],
  },
  Mounts: [],
};

const render = (t: string, v: unknown = inspect) => Template.parse(t).render(v);

Deno.test("template: fields, json, Go's %v, functions, pipelines", () => {
  assert.equal(
    render("{{.State.Status}} {{.State.ExitCode}} {{.State.OOMKilled}}"),
    "running 0 false",
  );
  assert.equal(
    render("{{.Config.Cmd}} {{.Config.Entrypoint}} {{.Config.Labels}}"),
    "[sleep 300] <nil> map[a:1 b:2]",
  );
  assert.equal(render("{{json .Config.Labels}}"), '{"b":"2","a":"1"}');
  assert.equal(render("{{.Config.Cmd | json}}"), '["sleep","300"]');
  assert.equal(
    render('{{join .Config.Cmd ","}}|{{upper .State.Status}}|{{lower "AB"}}'),
    "sleep,300|RUNNING|ab",
  );
  assert.equal(render('{{index .Config.Labels "a"}}{{index .Config.Labels "none"}}'), "1<nil>");
  assert.equal(render("{{len .Config.Env}} {{len .Mounts}}"), "2 0");
  assert.equal(render('{{printf "%s=%d" .Id .State.Pid}}'), "abc=42");
  assert.equal(render("{{.}}", "x"), "x");
  assert.equal(render("{{$.Id}}"), "abc");
  assert.equal(render("{{(index .Config.Env 1)}}"), "B=2");
  assert.equal(render('{{pad .Id 1 2}}|{{pad "" 1 1}}|{{truncate .Id 2}}'), " abc  ||ab");
  assert.equal(render("{{/* a comment */}}x"), "x");
});

Deno.test("template: if, else if, range, with, trimming", () => {
  assert.equal(
    render('{{if .State.OOMKilled}}oom{{else if eq .State.Status "running"}}up{{else}}down{{end}}'),
    "up",
  );
  assert.equal(render("{{range .Config.Env}}[{{.}}]{{end}}"), "[A=1][B=2]");
  assert.equal(render("{{range .Mounts}}x{{else}}none{{end}}"), "none");
  assert.equal(render("{{range .Config.Labels}}{{.}}{{end}}"), "12");
  assert.equal(render("{{with .State}}{{.Pid}}{{end}}"), "42");
  assert.equal(render("a  {{- .Id -}}  b"), "aabcb");
  assert.equal(render("{{if and .Id (not .State.OOMKilled)}}yes{{end}}"), "yes");
});

Deno.test("template: methods of a row (Docker's .Label)", () => {
  const row = {
    Names: "web",
    Label: (k: string) => ({ tier: "front" } as Record<string, string>)[k] ?? "",
  };
  assert.equal(render('{{.Names}} {{.Label "tier"}}|{{.Label "x"}}|', row), "web front||");
  assert.equal(render("{{json .}}", row), '{"Names":"web"}');
});

Deno.test("template: parse errors before output, missing keys when reached", () => {
  for (
    const [t, re] of [
      ["{{.State", /unclosed action/],
      ["{{if .Id}}x", /has no \{\{end\}\}/],
      ["{{end}}", /unexpected \{\{end\}\}/],
      ["{{nosuch .Id}}", /function "nosuch" not defined/],
      ['{{"unterminated}}', /unterminated quoted string/],
      ["{{}}", /missing value for command/],
      ["{{.Id | }}", /missing command/],
    ] as const
  ) {
    assert.throws(
      () => Template.parse(t),
      (e: Error) => e instanceof TemplateParseError && re.test(e.message),
      t,
    );
  }
  assert.throws(
    () => render("{{.Nope}}"),
    (e: Error) =>
      e instanceof UserError && !(e instanceof TemplateParseError) &&
      e.message ===
        'Template parsing error: executing "{{.Nope}}" at <.Nope>: map has no entry for key "Nope"',
  );
  assert.throws(() => render("{{.State.Status.X}}"), /can't evaluate field X in type string/);
});
