#!/usr/bin/env bash
# The demo: a 3-node cluster in network namespaces running resources with
# real agents; a monitor failure recovered, the node holding the primary
# killed, fenced and its resources taken over. Run as root (make demo).
set -euo pipefail
cd "$(dirname "$0")/.."
tachy=${TACHY:-bin/tachy}
labdir=${TACHY_LAB_DIR:-/run/tachy-lab}
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# where a Dummy resource runs: each node keeps its agents' state apart
where() { for n in n1 n2 n3; do [ -e "$labdir/$n/state/rsctmp/Dummy-$1.state" ] && echo "$n"; done; true; }
promoted() { for n in n1 n2 n3; do grep -qx Promoted "$labdir/$n/state/run/Stateful-db.state" 2>/dev/null && echo "$n"; done; true; }
wait_for() { for _ in $(seq 100); do eval "$1" && return 0; sleep 0.1; done; echo "timed out waiting for: $1" >&2; return 1; }

step "Three nodes, each in its namespace with two heartbeat rings (2 ms interval, down after 4 misses)"
$tachy lab down
$tachy lab up --nodes 3
$tachy lab status

step "The replicated CIB: a DC is elected; import a configuration (Pacemaker CIB XML)"
sed "s#LABDIR#$labdir#" scripts/demo-cib.xml > "$labdir/demo-cib.xml"
wait_for '$tachy lab exec n1 -- "$tachy" status --json | grep -q "\"dc\": \"n"'
$tachy lab exec n1 -- "$tachy" config import "$labdir/demo-cib.xml"
wait_for '[ -n "$(promoted)" ] && [ -n "$(where app)" ] && [ -n "$(where web)" ]'
sleep 1
$tachy lab exec n1 -- "$tachy" status | sed '/^Membership:/,$d'

web=$(where web)
step "web's monitor fails on $web (its state file removed): recovered in place"
rm "$labdir/$web/state/rsctmp/Dummy-web.state"
sleep 2
wait_for '[ -n "$(where web)" ]'
echo "web runs on $(where web); fail count:"
$tachy lab exec n1 -- "$tachy" config export | grep -o 'name="fail-count-web[^/]*' || true

primary=$(promoted)
step "SIGKILL the node holding the db primary and the app group ($primary): it is fenced, db promoted elsewhere, the group follows"
$tachy lab kill "$primary" --measure
wait_for '[ -n "$(promoted)" ] && [ "$(promoted)" != "'"$primary"'" ] && [ -n "$(where app)" ]'
survivor=$(for n in n1 n2 n3; do [ "$n" != "$primary" ] && echo $n && break; done)
$tachy lab exec "$survivor" -- "$tachy" status | sed '/^Membership:/,$d'
grep -h 'node fenced\|transition started' "$labdir"/n*/daemon.log | tail -4

step "$primary restarts and rejoins; resources stay where they are (stickiness of the running ones)"
$tachy lab start "$primary"
sleep 2
$tachy lab status

step "Prometheus metrics of $survivor (excerpt)"
$tachy lab exec "$survivor" -- curl -s "http://10.77.0.${survivor#n}:9647/metrics" | grep -E '^tachy_(resource_active|operations_total|fencing_total|cib_commit_seconds_count|quorate)' | head -12

printf '\nThe lab is still up: try `%s lab exec n1 -- %s status`, `%s lab partition n1/n2,n3`, `%s lab heal`;\n`%s lab down` removes it.\n' "$tachy" "$tachy" "$tachy" "$tachy" "$tachy"
