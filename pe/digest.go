package pe

import (
	"strings"

	"github.com/tachy-ha/tachy/cib"
)

// Definition changes (pcmk__handle_rsc_config_changes, process_rsc_history,
// pcmk__check_action_config and rsc_action_digest_cmp in Pacemaker 2.1.5):
// the history's op-digest of each start (and of probes, promotes and
// migrate_froms, which are compared as the start) since the last start is
// compared with the digest of the resource's current parameters for a
// start. A mismatch, or a recorded result without a digest, forces a
// restart "due to resource definition change", unless the agent supports
// reload (the history has an op-restart-digest and the parameters that
// force a restart are unchanged), which tachy does not plan yet.
// Recurring monitors with changed digests are only rescheduled, which the
// transition summary does not show.

// startParams are the parameters a start of rsc on n gets, as the digest
// sees them (pe_rsc_params plus the start op's own instance attributes),
// and false when tachy cannot know them exactly (templates, references).
func (ws *workingSet) startParams(rsc *Resource, n *Node) (map[string]string, bool) {
	p := rsc.Prim
	if p == nil || p.Template != "" {
		return nil, false
	}
	ctx := ws.nodeCtx(n)
	plain := func(sets []*cib.NVSet) bool {
		for _, s := range sets {
			if s.IDRef != "" {
				return false
			}
			for _, nv := range s.Pairs {
				if nv.IDRef != "" {
					return false
				}
			}
		}
		return true
	}
	if !plain(p.InstanceAttributes) {
		return nil, false
	}
	params := nvsets(p.InstanceAttributes, nil, ctx)
	for a := rsc.Parent; a != nil; a = a.Parent {
		var sets []*cib.NVSet
		switch {
		case a.Group != nil:
			sets = a.Group.InstanceAttributes
		case a.Clone != nil:
			sets = a.Clone.InstanceAttributes
		}
		if !plain(sets) {
			return nil, false
		}
		nvsets(sets, params, ctx)
	}
	if p.Operations != nil {
		if p.Operations.IDRef != "" {
			return nil, false
		}
		for _, op := range p.Operations.Ops {
			if op.Name != "start" || op.Interval != 0 {
				continue
			}
			if !plain(op.InstanceAttributes) {
				return nil, false
			}
			for k, v := range nvsets(op.InstanceAttributes, nil, ctx) {
				params[k] = v
			}
			break
		}
	}
	for k, v := range params {
		if strings.EqualFold(v, "#default") {
			// populate_hash: "#default" unsets the parameter
			delete(params, k)
		}
	}
	params["CRM_meta_interval"] = "0"
	return params, true
}

// definitionChanged reports whether the history lr of rsc on n (ops sorted
// by call id), which leaves it active there, shows a definition change, and
// the reason to give for the restart: "" when the agent itself changed
// (pcmk__rsc_agent_changed, which requires the stop without a reason and
// skips the digests).
func (ws *workingSet) definitionChanged(rsc *Resource, n *Node, lr *cib.LRMResource, ops []*cib.LRMRscOp) (bool, string) {
	if !n.available() && !n.Maintenance {
		return false, ""
	}
	if p := rsc.Prim; p != nil && p.Template == "" &&
		(p.Class != lr.Class || p.Provider != lr.Provider || p.Type != lr.Type) {
		return true, ""
	}
	if rsc.bundleOf != nil && (rsc.Parent == nil || rsc.Prim.Type == "rkt") {
		// A bundle's IPs and connections, and rkt containers: their
		// parameters are not compared yet.
		return false, ""
	}
	switch ws.digestChanged(rsc, n, ops) {
	case digestRestart:
		return true, "resource definition change"
	case digestReload:
		if rsc.reloadOn == nil {
			rsc.reloadOn = map[*Node]bool{}
		}
		rsc.reloadOn[n] = true
	}
	return false, ""
}

const (
	digestMatch = iota
	digestRestart
	digestReload
)

func (ws *workingSet) digestChanged(rsc *Resource, n *Node, ops []*cib.LRMRscOp) int {
	startIdx := -1
	for i, op := range ops {
		if op.CallID < 0 || op.OpStatus != 0 {
			continue
		}
		if (op.Operation == "start" || op.Operation == "migrate_from") && op.RCCode == 0 {
			startIdx = i
		}
	}
	if startIdx < 0 {
		startIdx = 0
	}
	var params map[string]string
	var digest string
	var startExtra, reload bool
	for _, op := range ops[startIdx:] {
		if op.Interval != 0 {
			continue
		}
		switch op.Operation {
		case "start", "monitor", "promote", "migrate_from":
		default:
			continue
		}
		if params == nil {
			var ok bool
			if params, ok = ws.startParams(rsc, n); !ok {
				return digestMatch
			}
			digest = cib.OpDigest(params)
			startExtra = startHasParams(rsc)
		}
		if op.OpRestartDigest != "" {
			// Reload-capable agent: restart when a parameter that forces
			// a restart changed, or when any changed and the start has
			// parameters of its own (calculate_main_digest presets
			// RSC_DIGEST_RESTART then); otherwise a reload, which tachy
			// does not plan yet.
			// op-force-restart comes with op-restart-digest; empty, it
			// names no parameter (calculate_restart_digest).
			restart := onlyParams(params, op.OpForceRestart)
			if cib.OpDigest(restart) != op.OpRestartDigest && !ws.onlySanitizedChanged(rsc, op, params) {
				return digestRestart
			}
			if (op.OpDigest == "" || op.OpDigest != digest) && !ws.onlySanitizedChanged(rsc, op, params) {
				if startExtra {
					return digestRestart
				}
				reload = true
			}
			continue
		}
		if (op.OpDigest == "" || op.OpDigest != digest) && !ws.onlySanitizedChanged(rsc, op, params) {
			return digestRestart
		}
	}
	if reload {
		return digestReload
	}
	return digestMatch
}

// onlyParams keeps the parameters named in list (a space-separated list,
// as op-force-restart records them).
func onlyParams(params map[string]string, list string) map[string]string {
	keep := map[string]bool{}
	for _, f := range strings.Fields(list) {
		keep[f] = true
	}
	out := map[string]string{}
	for k, v := range params {
		if keep[k] || strings.HasPrefix(k, "CRM_meta_") {
			out[k] = v
		}
	}
	return out
}

// startHasParams reports whether rsc's start op has instance attributes of
// its own (action->extra in Pacemaker).
func startHasParams(rsc *Resource) bool {
	if rsc.Prim == nil || rsc.Prim.Operations == nil {
		return false
	}
	for _, op := range rsc.Prim.Operations.Ops {
		if op.Name == "start" && op.Interval == 0 {
			for _, s := range op.InstanceAttributes {
				if len(s.Pairs) > 0 {
					return true
				}
			}
			return false
		}
	}
	return false
}

// onlySanitizedChanged is only_sanitized_changed: in a simulation of a
// sanitized CIB, a mismatch is no change when the digest of the
// parameters other than the secret ones (op-secure-params; for fencing
// devices recorded before feature set 3.16.0, also the fencer's own
// pcmk_* parameters) matches op-secure-digest.
func (ws *workingSet) onlySanitizedChanged(rsc *Resource, op *cib.LRMRscOp, params map[string]string) bool {
	if !ws.sanitized || op.OpSecureDigest == "" {
		return false
	}
	secure := map[string]string{}
	for k, v := range params {
		secure[k] = v
	}
	for _, k := range strings.Fields(op.OpSecureParams) {
		delete(secure, k)
	}
	if isFenceDevice(rsc) && compareVersion(op.CRMFeatureSet, "3.16.0") < 0 {
		for k := range secure {
			if stonithParam(k) {
				delete(secure, k)
			}
		}
	}
	return cib.OpDigest(secure) == op.OpSecureDigest
}

// stonithParam is pcmk_stonith_param: a parameter the fencer itself uses.
func stonithParam(k string) bool {
	switch k {
	case "provides", "stonith-timeout", "pcmk_action_limit", "pcmk_delay_base", "pcmk_delay_max",
		"pcmk_host_argument", "pcmk_host_check", "pcmk_host_list", "pcmk_host_map":
		return true
	}
	if !strings.HasPrefix(k, "pcmk_") {
		return false
	}
	rest := k[len("pcmk_"):]
	i := strings.IndexByte(rest, '_')
	if i < 0 {
		return false
	}
	switch rest[i:] {
	case "_action", "_timeout", "_retries":
		return true
	}
	return false
}

// clearStaleFailures is check_operation_expiry's "resource parameters
// have changed": when the last failure of a start or probe was recorded
// with parameters other than the current ones, its fail count on the node
// is cleared.
func (ws *workingSet) clearStaleFailures(rsc *Resource, n *Node, ops []*cib.LRMRscOp) {
	for _, op := range ops {
		if !strings.HasSuffix(op.ID, "_last_failure_0") || op.Interval != 0 || op.OpDigest == "" {
			continue
		}
		if op.Operation != "start" && op.Operation != "monitor" {
			continue
		}
		params, ok := ws.startParams(rsc, n)
		if !ok || cib.OpDigest(params) == op.OpDigest || ws.onlySanitizedChanged(rsc, op, params) {
			continue
		}
		if rsc.failCleared == nil {
			rsc.failCleared = map[*Node]bool{}
		}
		rsc.failCleared[n] = true
	}
}
