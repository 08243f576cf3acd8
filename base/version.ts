/**
 * mini-docker's version. The release workflow (.github/workflows/release.yml) writes the tag's
 * version here before it compiles the binaries; from a checkout it is the last release's.
 */
export const VERSION = "0.1.0";
