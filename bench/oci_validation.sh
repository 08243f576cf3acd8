#!/bin/sh
# Runs the OCI runtime validation suite (opencontainers/runtime-tools) against one runtime and
# prints a table row per program: its exit code, TAP "ok" and "not ok" counts, the errors it reports
# outside a test point, and pass (exit 0, no "not ok", no such error) or FAIL.
# It downloads nothing. The checkout it takes was obtained as in bench/results/oci-validation.md:
#   git clone https://github.com/opencontainers/runtime-tools && git -C runtime-tools checkout 260e151
#   (the newest commit whose go.mod asks for Go 1.19, Debian 12's golang-go)
#   cd runtime-tools && GOFLAGS=-mod=vendor GOPROXY=off make runtimetest validation-executables
# The checkout carries rootfs-amd64.tar.gz (busybox), which the programs unpack from their working
# directory, the checkout's root.
#
# Usage: bench/oci_validation.sh RUNTIME-TOOLS-CHECKOUT RUNTIME-BINARY [PROGRAM...]
#   RUNTIME-BINARY: /usr/sbin/runc, or a wrapper running `mini-docker runtime "$@"`.
# Each program's TAP output is kept in $OUT (default /tmp/oci-validation/<runtime name>/).
set -u
checkout=$1
runtime=$2
shift 2
out=${OUT:-/tmp/oci-validation/$(basename "$runtime")}
mkdir -p "$out"
cd "$checkout" || exit 1
if [ $# -eq 0 ]; then
  set -- $(ls validation | grep -v '^util$')
fi
printf '| program | exit | ok | not ok | errors | result |\n|---|---|---|---|---|---|\n'
for name in "$@"; do
  t=validation/$name/$name.t
  [ -x "$t" ] || { echo "missing $t: make validation-executables" >&2; exit 1; }
  RUNTIME=$runtime timeout 120 "$t" >"$out/$name.tap" 2>"$out/$name.err"
  code=$?
  ok=$(grep -c '^ok ' "$out/$name.tap")
  notok=$(grep -c '^not ok ' "$out/$name.tap")
  # A failure some programs report outside any test point: a YAML block with an "error" key after
  # the header or another block (not under an "ok"/"not ok" line).
  errors=$(awk '/^  ---/ { orphan = (prev ~ /^(TAP version|  \.\.\.|1\.\.)/) }
    orphan && /^    "error": / { n++ }
    /^[^ ]/ || /^  \.\.\./ { prev = $0 }
    END { print n + 0 }' "$out/$name.tap")
  if [ "$code" -eq 0 ] && [ "$notok" -eq 0 ] && [ "$errors" -eq 0 ]; then result=pass; else result=FAIL; fi
  printf '| %s | %s | %s | %s | %s | %s |\n' "$name" "$code" "$ok" "$notok" "$errors" "$result"
done
