/**
 * Times as Docker shows them: RFC 3339 in UTC with nanoseconds ("2024-05-01T12:00:00.123456789Z"),
 * and Go's zero time for "never".
 */

/** Go's zero time, which Docker shows for a container that never started or finished. */
export const ZERO_TIME = "0001-01-01T00:00:00Z";

/**
 * Now, as Go's RFC3339Nano writes it (Docker's times): up to nine fractional digits, trailing
 * zeros dropped. The clock gives microseconds at best.
 */
export function timestamp(ms: number = performance.timeOrigin + performance.now()): string {
  const whole = Math.floor(ms);
  const iso = new Date(whole).toISOString(); // "2024-05-01T12:00:00.123Z"
  const micros = Math.min(999, Math.round((ms - whole) * 1000));
  const fraction = `${iso.slice(20, 23)}${String(micros).padStart(3, "0")}`.replace(/0+$/, "");
  return `${iso.slice(0, 19)}${fraction === "" ? "" : `.${fraction}`}Z`;
}

/** Milliseconds since the epoch of an RFC 3339 time (any number of fractional digits). */
export function parseTime(text: string): number {
  return Date.parse(text);
}
