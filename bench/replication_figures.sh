#!/bin/sh
# Replication figures (docs/Replication.md): builds and runs replication_bench, which starts its
# own nats-server on a loopback port and prints FIGURE lines. Prints nothing (figures skipped)
# when this build has no replication (libnats-dev missing).
set -e
BUILD="${MMSB_BUILD_DIR:-$(dirname "$0")/../build}"
if ! ninja -C "$BUILD" replication_bench >&2; then
  echo "replication_figures: replication_bench not built (libnats-dev missing?)" >&2
  exit 0
fi
exec "$BUILD/bench/replication_bench"
