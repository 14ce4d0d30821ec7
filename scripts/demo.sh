#!/usr/bin/env bash
# The demo: a 3-node cluster in network namespaces, its status, one node
# killed and how fast the others saw it go. Run as root (make demo).
set -euo pipefail
cd "$(dirname "$0")/.."
tachy=${TACHY:-bin/tachy}
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "Three nodes, each in its namespace with two heartbeat rings (1 ms interval, down after 5 misses)"
$tachy lab down
$tachy lab up --nodes 3
$tachy lab status

step "n1's view: members, each link's state and last-seen age, quorum"
$tachy lab exec n1 -- "$tachy" status

step "SIGKILL n3's daemon; the survivors' down events carry kernel timestamps"
$tachy lab kill n3 --measure

step "n1's view now: n3 down on both links, quorum kept with 2 of 3 votes"
$tachy lab exec n1 -- "$tachy" status

step "n3 restarts with a new incarnation and rejoins"
$tachy lab start n3
sleep 1
$tachy lab status

step "Cut n2's ring 0 only: a link-down, not a node-down"
$tachy lab exec n2 -- ip link set ring0 down
sleep 0.5
$tachy lab exec n1 -- "$tachy" status
$tachy lab exec n2 -- ip link set ring0 up

printf '\nThe lab is still up: try `%s lab status`, `%s lab partition n1/n2,n3`, `%s lab heal`;\n`%s lab down` removes it.\n' "$tachy" "$tachy" "$tachy" "$tachy"
