#!/usr/bin/env bash
# Stops the local test-image registry that tests/images/build.sh started,
# found through DIR/registry.pid. Never stops a registry it did not start.
#
# Usage: tests/images/stop.sh [--dir DIR]
#   --dir   the directory given to build.sh
#           (default ${XDG_CACHE_HOME:-$HOME/.cache}/berth-test-images)
set -euo pipefail

dir="${XDG_CACHE_HOME:-$HOME/.cache}/berth-test-images"

die() {
    echo "stop.sh: $*" >&2
    exit 1
}

while [[ $# -gt 0 ]]; do
    case "$1" in
        --dir)
            [[ $# -ge 2 ]] || die "--dir needs a value"
            dir="$2"
            shift 2
            ;;
        -h | --help)
            sed -n '2,7s/^# \{0,1\}//p' "$0"
            exit 0
            ;;
        *) die "unknown argument: $1" ;;
    esac
done

pidfile="$dir/registry.pid"
if [[ ! -f "$pidfile" ]]; then
    echo "registry: no $pidfile, nothing to stop"
    exit 0
fi
pid="$(cat "$pidfile")"
[[ "$pid" =~ ^[0-9]+$ ]] || die "bad pid in $pidfile: $pid"

# Only signal the pid if it is still a docker-registry (pids get reused).
if ! grep -qa 'docker-registry' "/proc/$pid/cmdline" 2>/dev/null; then
    echo "registry: pid $pid is not running any more"
    rm -f "$pidfile"
    exit 0
fi

kill -TERM "$pid"
for ((tries = 0; tries < 50; tries++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
fi
rm -f "$pidfile"
echo "registry: stopped pid $pid"
