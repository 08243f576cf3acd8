/**
 * The Go text/template subset that Docker's `--format` and `inspect -f` take, over JSON-shaped
 * values: text and `{{actions}}` (with `{{-` and `-}}` trimming and comments); pipelines of
 * fields (`.State.Status`, `.`, `$`), literals, Docker's functions (json, join, split, lower,
 * upper, title, pad, truncate) and text/template's builtins (index, len, print, printf,
 * println, eq, ne, lt, le, gt, ge, and, or, not), methods (`.Label "key"` when the field is a
 * function), `(parentheses)`; and `if`/`else if`/`else`, `range`/`else`, `with`/`else`, `end`.
 *
 * As in Docker: a template that does not parse is an error before anything is printed; a field
 * that does not exist is an error when it is reached (missingkey=error); values print as Go's
 * `%v` does (`[a b]`, `map[k:v]`, `<nil>`).
 */
import { EXIT_FAILURE, UserError } from "../base/errors.ts";

/** A template that does not parse: exit code 1, as Docker's lists (its inspect says 64). */
export class TemplateParseError extends UserError {
  constructor(message: string) {
    super(message, EXIT_FAILURE);
  }
}

/**
 * A user's `--format` template for inspect-like commands, parsed before anything is looked up;
 * one that does not parse exits 64, as Docker's inspect does.
 */
export function inspectTemplate(format: string): Template {
  try {
    return Template.parse(format);
  } catch (err) {
    if (err instanceof TemplateParseError) throw new UserError(err.message, 64);
    throw err;
  }
}

/** A value templates walk: what JSON holds, plus methods (functions) of our own rows. */
// deno-lint-ignore no-explicit-any
export type Value = any;

type Node =
  | { kind: "text"; text: string }
  | { kind: "action"; pipe: Pipe }
  | { kind: "if" | "with"; pipe: Pipe; then: Node[]; else?: Node[] }
  | { kind: "range"; pipe: Pipe; body: Node[]; else?: Node[] };

type Pipe = Command[];
type Command = Operand[];
type Operand =
  | { kind: "field"; root: "dot" | "dollar"; path: string[]; text: string }
  | { kind: "literal"; value: Value }
  | { kind: "func"; name: string }
  | { kind: "paren"; pipe: Pipe; path: string[] };

const FUNCS: Record<string, (...args: Value[]) => Value> = {
  json: (v) => JSON.stringify(v ?? null),
  join: (list, sep) => asList(list, "join").map(show).join(String(sep)),
  split: (s, sep) => String(s).split(String(sep)),
  lower: (s) => String(s).toLowerCase(),
  upper: (s) => String(s).toUpperCase(),
  title: (s) => String(s).replace(/\b\w/g, (c) => c.toUpperCase()),
  pad: (s, before, after) =>
    show(s) === "" ? "" : " ".repeat(Number(before)) + show(s) + " ".repeat(Number(after)),
  truncate: (s, n) => [...show(s)].slice(0, Number(n)).join(""),
  index: (v, ...keys) => {
    for (const k of keys) {
      if (v === null || typeof v !== "object") throw new Error(`cannot index ${show(v)}`);
      if (Array.isArray(v) && !(Number(k) >= 0 && Number(k) < v.length)) {
        throw new Error(`index out of range: ${k}`);
      }
      v = (v as Record<string, Value>)[k] ?? null; // a missing map key: Go's zero value
    }
    return v;
  },
  len: (v) => {
    if (typeof v === "string" || Array.isArray(v)) return v.length;
    if (v !== null && typeof v === "object") return Object.keys(v).length;
    throw new Error(`len of ${typeName(v)}`);
  },
  print: (...args) => args.map(show).join(""),
  println: (...args) => args.map(show).join(" ") + "\n",
  printf: (format, ...args) => printf(String(format), args),
  eq: (a, ...bs) => bs.some((b) => a === b),
  ne: (a, b) => a !== b,
  lt: (a, b) => a < b,
  le: (a, b) => a <= b,
  gt: (a, b) => a > b,
  ge: (a, b) => a >= b,
  and: (...args) => args.find((a) => !truthy(a)) ?? args[args.length - 1],
  or: (...args) => args.find((a) => truthy(a)) ?? args[args.length - 1],
  not: (a) => !truthy(a),
};

/** A parsed template: `render` it with a value as `.`. */
export class Template {
  readonly #nodes: Node[];
  readonly source: string;

  private constructor(source: string, nodes: Node[]) {
    this.source = source;
    this.#nodes = nodes;
  }

  /** Parses `source`; a TemplateParseError says what is wrong. */
  static parse(source: string): Template {
    return new Template(source, new Parser(source).parseAll());
  }

  /**
   * The text for `dot`; an execution error (a missing field) is a UserError. With `header`,
   * Docker's header functions: those that would change a column's name leave it as it is.
   */
  render(dot: Value, opts: { header?: boolean } = {}): string {
    const out: string[] = [];
    const saved = { ...FUNCS };
    if (opts.header) {
      for (const name of ["json", "join", "split", "lower", "upper", "title", "truncate"]) {
        FUNCS[name] = (v) => v;
      }
    }
    try {
      run(this.#nodes, dot, dot, out);
    } catch (err) {
      if (err instanceof UserError) throw err;
      throw new UserError(
        `Template parsing error: executing ${JSON.stringify(this.source)}${
          err instanceof ExecError ? ` at <${err.at}>` : ""
        }: ${(err as Error).message}`,
        EXIT_FAILURE,
      );
    } finally {
      Object.assign(FUNCS, saved);
    }
    return out.join("");
  }
}

class ExecError extends Error {
  constructor(readonly at: string, message: string) {
    super(message);
  }
}

function run(nodes: Node[], dot: Value, root: Value, out: string[]): void {
  for (const node of nodes) {
    switch (node.kind) {
      case "text":
        out.push(node.text);
        break;
      case "action": {
        out.push(show(evalPipe(node.pipe, dot, root)));
        break;
      }
      case "if": {
        const v = evalPipe(node.pipe, dot, root);
        if (truthy(v)) run(node.then, dot, root, out);
        else if (node.else) run(node.else, dot, root, out);
        break;
      }
      case "with": {
        const v = evalPipe(node.pipe, dot, root);
        if (truthy(v)) run(node.then, v, root, out);
        else if (node.else) run(node.else, dot, root, out);
        break;
      }
      case "range": {
        const v = evalPipe(node.pipe, dot, root);
        const items = v === null || v === undefined
          ? []
          : Array.isArray(v)
          ? v
          : typeof v === "object"
          ? Object.keys(v).sort().map((k) => v[k])
          : typeof v === "number"
          ? Array.from({ length: v }, (_, i) => i)
          : undefined;
        if (items === undefined) throw new Error(`range can't iterate over ${show(v)}`);
        if (items.length === 0 && node.else) run(node.else, dot, root, out);
        for (const item of items) run(node.body, item, root, out);
        break;
      }
    }
  }
}

function evalPipe(pipe: Pipe, dot: Value, root: Value): Value {
  let piped: { value: Value } | undefined;
  for (const command of pipe) {
    piped = { value: evalCommand(command, dot, root, piped) };
  }
  return piped?.value;
}

function evalCommand(
  command: Command,
  dot: Value,
  root: Value,
  piped: { value: Value } | undefined,
): Value {
  const [head, ...rest] = command;
  const args = () => [
    ...rest.map((o) => evalOperand(o, dot, root)),
    ...(piped ? [piped.value] : []),
  ];
  if (head!.kind === "func") {
    const fn = FUNCS[head!.name]!;
    return fn(...args());
  }
  const value = evalOperand(head!, dot, root, true);
  if (typeof value === "function") return value(...args());
  if (rest.length > 0 || piped) {
    throw new ExecError(operandText(head!), "can't give argument to non-function");
  }
  return value;
}

function evalOperand(o: Operand, dot: Value, root: Value, callable = false): Value {
  switch (o.kind) {
    case "literal":
      return o.value;
    case "func": {
      // A function as an argument: called without arguments (`{{print (len .X)}}` is the usual).
      return FUNCS[o.name]!();
    }
    case "paren":
      return walk(evalPipe(o.pipe, dot, root), o.path, `(...)${o.path.map((p) => `.${p}`)}`);
    case "field": {
      const start = o.root === "dollar" ? root : dot;
      const value = walk(start, o.path, o.text);
      return typeof value === "function" && !callable ? value() : value;
    }
  }
}

function walk(value: Value, path: string[], text: string): Value {
  for (const key of path) {
    if (typeof value === "function") value = value();
    if (value === null || value === undefined) {
      throw new ExecError(text, `nil pointer evaluating ${typeName(value)}.${key}`);
    }
    if (typeof value !== "object" || Array.isArray(value)) {
      throw new ExecError(text, `can't evaluate field ${key} in type ${typeName(value)}`);
    }
    if (!(key in value)) {
      throw new ExecError(text, `map has no entry for key ${JSON.stringify(key)}`);
    }
    value = value[key];
  }
  return value;
}

function operandText(o: Operand): string {
  return o.kind === "field" ? o.text : o.kind === "func" ? o.name : "...";
}

/** Go's truth: false, 0, nil and empty strings, lists and maps are false. */
function truthy(v: Value): boolean {
  if (v === null || v === undefined || v === false || v === 0 || v === "") return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === "object") return Object.keys(v).length > 0;
  return true;
}

function typeName(v: Value): string {
  if (v === null || v === undefined) return "interface {}";
  if (Array.isArray(v)) return "[]interface {}";
  if (typeof v === "object") return "map[string]interface {}";
  if (typeof v === "number") return Number.isInteger(v) ? "int" : "float64";
  return typeof v;
}

function asList(v: Value, fn: string): Value[] {
  if (Array.isArray(v)) return v;
  if (v === null || v === undefined) return [];
  throw new Error(`${fn} of ${typeName(v)}`);
}

/** A value as Go's `%v` prints it. */
export function show(v: Value): string {
  if (v === null || v === undefined) return "<nil>";
  if (typeof v === "function") return show(v());
  if (Array.isArray(v)) return `[${v.map(show).join(" ")}]`;
  if (typeof v === "object") {
    return `map[${Object.keys(v).sort().map((k) => `${k}:${show(v[k])}`).join(" ")}]`;
  }
  return String(v);
}

/** printf with %s, %d, %v, %q and %%. */
function printf(format: string, args: Value[]): string {
  let i = 0;
  return format.replace(/%([sdvq%])/g, (_, verb: string) => {
    if (verb === "%") return "%";
    const arg = args[i++];
    if (verb === "q") return JSON.stringify(show(arg));
    if (verb === "d") return String(Math.trunc(Number(arg)));
    return show(arg);
  });
}

/** Text and actions, with their positions for messages. */
class Parser {
  readonly #src: string;
  #pos = 0;

  constructor(src: string) {
    this.#src = src;
  }

  #fail(message: string): never {
    throw new TemplateParseError(
      `Template parsing error: ${message} in ${JSON.stringify(this.#src)}`,
    );
  }

  parseAll(): Node[] {
    const { nodes, end } = this.#parseList();
    if (end !== undefined) this.#fail(`unexpected {{${end}}}`);
    return nodes;
  }

  /** Nodes until {{end}}, {{else}} or the end of the source (which of them ended the list). */
  #parseList(): { nodes: Node[]; end?: string; elseIf?: Pipe } {
    const nodes: Node[] = [];
    for (;;) {
      const open = this.#src.indexOf("{{", this.#pos);
      let text = this.#src.slice(this.#pos, open < 0 ? undefined : open);
      if (open < 0) {
        if (text !== "") nodes.push({ kind: "text", text });
        return { nodes };
      }
      const close = this.#src.indexOf("}}", open + 2);
      if (close < 0) this.#fail("unclosed action");
      let inner = this.#src.slice(open + 2, close);
      if (/^-\s/.test(inner)) {
        text = text.trimEnd();
        inner = inner.slice(1);
      }
      this.#pos = close + 2;
      if (/\s-$/.test(inner)) {
        inner = inner.slice(0, -1);
        const rest = this.#src.slice(this.#pos);
        this.#pos += rest.length - rest.trimStart().length;
      }
      if (text !== "") nodes.push({ kind: "text", text });
      const body = inner.trim();
      if (body.startsWith("/*")) {
        if (!body.endsWith("*/")) this.#fail("unclosed comment");
        continue;
      }
      const word = /^(\w+)\b\s*/.exec(body);
      const keyword = word?.[1];
      const rest = word === null ? body : body.slice(word[0].length);
      if (keyword === "end") {
        if (rest !== "") this.#fail("unexpected words after end");
        return { nodes, end: "end" };
      }
      if (keyword === "else") {
        if (rest === "") return { nodes, end: "else" };
        const elseIf = /^if\b\s*/.exec(rest);
        if (elseIf === null) this.#fail(`unexpected "${rest}" after else`);
        return { nodes, end: "else", elseIf: this.#pipe(rest.slice(elseIf[0].length)) };
      }
      if (keyword === "if" || keyword === "with" || keyword === "range") {
        nodes.push(this.#block(keyword, this.#pipe(rest)));
        continue;
      }
      if (keyword === "define" || keyword === "template" || keyword === "block") {
        this.#fail(`{{${keyword}}} is not supported`);
      }
      if (body === "") this.#fail("missing value for command");
      nodes.push({ kind: "action", pipe: this.#pipe(body) });
    }
  }

  #block(kind: "if" | "with" | "range", pipe: Pipe): Node {
    const first = this.#parseList();
    if (first.end === undefined) this.#fail(`unexpected EOF: {{${kind}}} has no {{end}}`);
    let otherwise: Node[] | undefined;
    if (first.end === "else") {
      if (first.elseIf !== undefined) {
        if (kind !== "if") this.#fail(`{{else if}} inside {{${kind}}}`);
        otherwise = [this.#block("if", first.elseIf)];
      } else {
        const second = this.#parseList();
        if (second.end !== "end") this.#fail(`unexpected EOF: {{${kind}}} has no {{end}}`);
        otherwise = second.nodes;
      }
    }
    if (kind === "range") return { kind, pipe, body: first.nodes, else: otherwise };
    return { kind, pipe, then: first.nodes, else: otherwise };
  }

  /** A pipeline: commands separated by "|". */
  #pipe(text: string): Pipe {
    const tokens = tokenize(text, (m) => this.#fail(m));
    let at = 0;
    const parsePipe = (closing: boolean): Pipe => {
      const commands: Command[] = [];
      let command: Operand[] = [];
      for (;;) {
        const t = tokens[at];
        if (t === undefined || t.kind === "close") {
          if (closing && t === undefined) this.#fail("unclosed left paren");
          if (!closing && t !== undefined) this.#fail("unexpected right paren");
          if (t !== undefined) at++;
          break;
        }
        at++;
        if (t.kind === "pipe") {
          if (command.length === 0) this.#fail("missing command before |");
          commands.push(command);
          command = [];
          continue;
        }
        if (t.kind === "open") {
          const inner = parsePipe(true);
          const path = tokens[at]?.kind === "field" && tokens[at]!.text.startsWith(".")
            ? tokens[at++]!.text.split(".").slice(1)
            : [];
          command.push({ kind: "paren", pipe: inner, path });
          continue;
        }
        command.push(this.#operand(t.text, t.kind));
      }
      if (command.length === 0) this.#fail("missing command");
      commands.push(command);
      for (const [i, c] of commands.entries()) {
        if (i > 0 && c[0]!.kind === "literal") this.#fail("non executable command in pipeline");
      }
      return commands;
    };
    return parsePipe(false);
  }

  #operand(text: string, kind: "field" | "word" | "string" | "number"): Operand {
    if (kind === "string") return { kind: "literal", value: text };
    if (kind === "number") return { kind: "literal", value: Number(text) };
    if (kind === "field") {
      const dollar = text.startsWith("$");
      const path = (dollar ? text.slice(1) : text).split(".").slice(1).filter((p) => p !== "");
      if (dollar && text !== "$" && !text.startsWith("$.")) {
        this.#fail(`undefined variable "${text}"`);
      }
      return { kind: "field", root: dollar ? "dollar" : "dot", path, text };
    }
    if (text === "true" || text === "false") return { kind: "literal", value: text === "true" };
    if (text === "nil") return { kind: "literal", value: null };
    if (!(text in FUNCS)) this.#fail(`function "${text}" not defined`);
    return { kind: "func", name: text };
  }
}

type Token = {
  kind: "field" | "word" | "string" | "number" | "pipe" | "open" | "close";
  text: string;
};

function tokenize(text: string, fail: (message: string) => never): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === "|") {
      tokens.push({ kind: "pipe", text: c });
      i++;
    } else if (c === "(") {
      tokens.push({ kind: "open", text: c });
      i++;
    } else if (c === ")") {
      tokens.push({ kind: "close", text: c });
      i++;
    } else if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      if (j >= text.length) fail("unterminated quoted string");
      try {
        tokens.push({ kind: "string", text: JSON.parse(text.slice(i, j + 1)) });
      } catch {
        fail(`bad string ${text.slice(i, j + 1)}`);
      }
      i = j + 1;
    } else if (c === "`") {
      const j = text.indexOf("`", i + 1);
      if (j < 0) fail("unterminated raw quoted string");
      tokens.push({ kind: "string", text: text.slice(i + 1, j) });
      i = j + 1;
    } else {
      const m = /^(?:\$?(?:\.[A-Za-z_][\w]*)+|\$|\.|-?\d+(?:\.\d+)?|[A-Za-z_]\w*)/.exec(
        text.slice(i),
      );
      if (m === null) fail(`unexpected ${JSON.stringify(c)}`);
      const t = m[0];
      const kind = /^[$.]/.test(t) ? "field" : /^-?\d/.test(t) ? "number" : "word";
      tokens.push({ kind, text: t });
      i += t.length;
    }
  }
  return tokens;
}
