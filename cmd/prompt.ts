/** Docker's confirmation before a command removes things (`prune` without `-f`). */

/** One line of our stdin (without its newline); "" at the end of input. */
async function readLine(): Promise<string> {
  const bytes: number[] = [];
  const buf = new Uint8Array(1);
  while ((await Deno.stdin.read(buf)) === 1 && buf[0] !== 10) bytes.push(buf[0]!);
  return new TextDecoder().decode(new Uint8Array(bytes));
}

/**
 * Prints `warning` and Docker's question on stdout and reads the answer: true for "y" or "yes".
 * The end of input (a script without -f) is a no.
 */
export async function confirm(warning: string): Promise<boolean> {
  Deno.stdout.writeSync(
    new TextEncoder().encode(`${warning}\nAre you sure you want to continue? [y/N] `),
  );
  const answer = (await readLine()).trim();
  return /^y(es)?$/i.test(answer);
}
