// Package pe is the policy engine: a pure, deterministic function from a CIB
// snapshot and a clock to a transition graph (actions with ordering edges)
// and a summary in the words crm_simulate uses, following Pacemaker 2.1.5's
// scheduler.
//
// The scheduler runs in the same stages as Pacemaker's: unpack the status
// (node states, each resource's role and location from its operation
// history, failures and fail counts), apply node criteria (location
// constraints, stickiness, migration threshold), assign resources to nodes
// in Pacemaker's order (priority, then score on the current node, then
// score anywhere) honouring colocations, create actions (start, stop,
// monitor) and order them, then summarise.
//
// Covered: primitives, groups, clones (anonymous and unique, of primitives
// and groups), promotable clones, Pacemaker Remote and guest nodes
// (pe/remote.go) and bundles (pe/bundle.go: replicas of a container, an IP
// and a guest node running an instance of the inner clone).
package pe
