#!/bin/sh
# Runs the four reliability tools one after the other at their default sizes and tees a log.
#   tools/reliability/run_all.sh GLFD_BINARY [LOG]
# Copy the binary out of .build first (a rebuild must not change it under the run):
#   mkdir -p /tmp/rel-glfd && cp .build/release/glfd /tmp/rel-glfd/glfd
#   tools/reliability/run_all.sh /tmp/rel-glfd/glfd
# Exit status: 0 when every tool passed, else 1. Each run's state lives under /tmp and is removed
# (kept and named in the log when a tool fails).
set -u
if [ $# -lt 1 ]; then
    echo "usage: $0 GLFD_BINARY [LOG]" >&2
    exit 2
fi
GLFD=$1
LOG=${2:-/tmp/glfd-reliability-$(date -u +%Y%m%dT%H%M%SZ).log}
PYTHON=${PYTHON:-/usr/bin/python3}
HERE=$(cd "$(dirname "$0")" && pwd)
STATUS=$(mktemp /tmp/glfd-reliability-status.XXXXXX)
trap 'rm -f "$STATUS"' EXIT
failed=""
: > "$LOG"
for tool in kill9 fuzz bad_images load; do
    echo "==== $tool ($(date -u +%H:%M:%S) UTC) ====" | tee -a "$LOG"
    # The tool's exit status (a pipeline's would be tee's).
    ( "$PYTHON" -u "$HERE/$tool.py" --glfd "$GLFD" 2>&1; echo $? > "$STATUS" ) | tee -a "$LOG"
    status=$(cat "$STATUS")
    echo "==== $tool exit status $status ====" | tee -a "$LOG"
    [ "$status" = 0 ] || failed="$failed $tool"
done
if [ -n "$failed" ]; then
    echo "FAILED:$failed (log: $LOG)" | tee -a "$LOG"
    exit 1
fi
echo "all passed (log: $LOG)" | tee -a "$LOG"
