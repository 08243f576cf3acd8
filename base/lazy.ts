/**
 * Loads one of mini-docker's own modules when it is first needed. The specifier is computed on
 * purpose: before it runs anything, Deno reads every module reachable through imports written
 * as string literals, dynamic ones included, and for a `run` that meant every command's modules
 * (about 8 ms). `deno task compile` cannot see these imports either, so deno.json lists each
 * module loaded this way with --include (lazy_test.ts keeps that list true).
 */
export function lazy<T>(path: string, base: string): Promise<T> {
  return import(new URL(path, base).href);
}
