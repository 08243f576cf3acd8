/**
 * Errors that reach the user. Every failure becomes one line on stderr and one of Docker's exit
 * codes: 125 when mini-docker itself fails, 126 when the command cannot be invoked, 127 when it
 * is not found.
 */

/**
 * Exit code of a command other than `run`/`create` that failed on what it was given (no such
 * container, a container in the wrong state): Docker's CLI exits 1 for every error the daemon
 * returns, and 125 only for its own (bad flags) and for `run` and `create`.
 */
export const EXIT_FAILURE = 1;
/** Exit code when mini-docker itself fails (bad flag, missing rootfs, setup error). */
export const EXIT_ENGINE = 125;
/** Exit code when the container's command exists but cannot be invoked. */
export const EXIT_CANNOT_INVOKE = 126;
/** Exit code when the container's command is not found. */
export const EXIT_NOT_FOUND = 127;

/**
 * An error meant for the user: `message` is printed as is (capital first letter, no final
 * period, the value quoted, detail after a colon), and the process exits with `exitCode`.
 */
export class UserError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode: number = EXIT_ENGINE) {
    super(message);
    this.name = "UserError";
    this.exitCode = exitCode;
  }
}

/** Adds context in front of an error's message, keeping its exit code: "Cannot prepare rootfs: ..." */
export function withContext(context: string, err: unknown): UserError {
  const message = err instanceof Error ? err.message : String(err);
  const code = err instanceof UserError ? err.exitCode : EXIT_ENGINE;
  return new UserError(`${context}: ${message}`, code);
}

/** Ends a command with a given exit code and no message (the container's own code). */
export class ExitCode extends Error {
  readonly code: number;
  constructor(code: number) {
    super(`exit ${code}`);
    this.name = "ExitCode";
    this.code = code;
  }
}

/**
 * A value as messages quote it: in double quotes, with control characters escaped, so that a
 * value holding a newline still makes a one-line message: `Invalid hostname "a\nb"`.
 */
export function quote(value: string): string {
  return JSON.stringify(value);
}

/** A message on one line: any line break left in it (an error of a library) is escaped. */
export function oneLine(message: string): string {
  return message.trim().replace(/\r?\n/g, "\\n");
}

/** Prints an error as every command does (one line on stderr) and returns its exit code. */
export function reportError(err: unknown): number {
  if (err instanceof ExitCode) return err.code;
  if (err instanceof UserError) {
    console.error(`mini-docker: ${oneLine(err.message)}`);
    return err.exitCode;
  }
  console.error(`mini-docker: ${oneLine(err instanceof Error ? err.message : String(err))}`);
  return EXIT_ENGINE;
}
