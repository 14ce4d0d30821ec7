package controller

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tachy-ha/tachy/cib"
	"github.com/tachy-ha/tachy/lrmd"
	"github.com/tachy-ha/tachy/nbdrepl"
)

// newVolumeAgent is the built-in ocf:tachy:volume agent of this node: it
// sets promotion scores as crm_attribute --promotion does (the node
// attribute master-<primitive>), and follows this node's quorum.
func newVolumeAgent(d *Daemon) *lrmd.VolumeAgent {
	return lrmd.NewVolumeAgent(lrmd.VolumeAgentOptions{
		Node:     d.local.Name,
		StateDir: d.cfg.Local.StateDir,
		Logger:   d.log,
		SetPromotion: func(ctx context.Context, rsc string, score int) error {
			if d.cib == nil {
				return errors.New("the CIB is not running yet")
			}
			ch := &cib.Change{Op: cib.OpSetNodeAttribute, Node: d.local.Name, Name: "master-" + rsc}
			if score >= 0 {
				v := strconv.Itoa(score)
				ch.Value = &v
			}
			_, err := d.cib.r.Change(ctx, d.cib.net, ch)
			return err
		},
		Quorate: func() bool {
			d.mu.Lock()
			defer d.mu.Unlock()
			return d.qs.Quorate
		},
		PeerGone: func(node string) bool { return d.nodeGone(node) },
		HadPrimary: func(rsc, volume string) (bool, bool) {
			if d.cib == nil {
				return false, false
			}
			c, _ := d.cib.r.Current()
			// A copy that lacks the resource has not caught up: it
			// could lack the record too.
			if c.FindPrimitive(rsc) == nil {
				return false, false
			}
			for _, set := range c.Configuration.CRMConfig {
				for _, p := range set.Pairs {
					if p.Name == volumeHadPrimaryOption(volume) && p.Value == "true" {
						return true, true
					}
				}
			}
			return false, true
		},
		SetHadPrimary: func(ctx context.Context, volume string) error {
			if d.cib == nil {
				return errors.New("the CIB is not running yet")
			}
			v := "true"
			_, err := d.cib.r.Change(ctx, d.cib.net, &cib.Change{Op: cib.OpSetProperty, Name: volumeHadPrimaryOption(volume), Value: &v})
			return err
		},
	})
}

// volumeHadPrimaryOption is the cluster option that records that a volume
// has had a primary: from then on a replica with new storage is not
// promoted by score (see lrmd.VolumeAgentOptions.HadPrimary).
func volumeHadPrimaryOption(volume string) string { return "tachy-volume-" + volume + "-had-primary" }

// nodeGone says whether a configured node is not in this node's
// membership now (false for names that are not cluster nodes).
func (d *Daemon) nodeGone(name string) bool {
	if d.hb == nil || name == d.local.Name {
		return false
	}
	for _, n := range d.cfg.Nodes {
		if n.Name != name {
			continue
		}
		for _, id := range d.hb.Up() {
			if id == n.ID {
				return false
			}
		}
		return true
	}
	return false
}

// VolumeRequest is an operator's request to this node's volumes (tachy
// volume ...).
type VolumeRequest struct {
	// Action: status, promote, demote, verify, resync, disconnect, connect.
	Action string `json:"action"`
	Name   string `json:"name,omitempty"` // the volume id ("" with status: all)
	Peer   string `json:"peer,omitempty"`
	Force  bool   `json:"force,omitempty"`
	Repair bool   `json:"repair,omitempty"`
}

// VolumeResponse answers a VolumeRequest.
type VolumeResponse struct {
	Volumes []nbdrepl.VolumeStatus `json:"volumes,omitempty"`
	Verify  *nbdrepl.VerifyResult  `json:"verify,omitempty"`
}

// volumeRequest runs an operator's request against the volumes this node's
// agent runs.
func (d *Daemon) volumeRequest(req VolumeRequest) (*VolumeResponse, error) {
	if d.volumes == nil {
		return nil, errors.New("this daemon runs no volume agent")
	}
	vols := d.volumes.Volumes()
	if req.Action == "status" && req.Name == "" {
		return &VolumeResponse{Volumes: append([]nbdrepl.VolumeStatus{}, d.volumeStatuses()...)}, nil
	}
	var v *nbdrepl.Volume
	var names []string
	for _, x := range vols {
		st := x.Status()
		names = append(names, st.Name)
		if st.Name == req.Name {
			v = x
		}
	}
	if v == nil {
		sort.Strings(names)
		running := "none"
		if len(names) > 0 {
			running = strings.Join(names, ", ")
		}
		return nil, fmt.Errorf("volume %q does not run on %s (running here: %s); its resource (ocf:tachy:volume) must be started on this node: see tachy resource list", req.Name, d.local.Name, running)
	}
	needPeer := func() error {
		if req.Peer == "" {
			return fmt.Errorf("%s needs a peer: tachy volume %s %s PEER", req.Action, req.Action, req.Name)
		}
		return nil
	}
	res := &VolumeResponse{}
	var err error
	switch req.Action {
	case "status":
	case "promote":
		err = v.Promote(req.Force)
	case "demote":
		err = v.Demote()
	case "verify":
		if err = needPeer(); err == nil {
			var vr nbdrepl.VerifyResult
			vr, err = v.Verify(req.Peer, req.Repair)
			res.Verify = &vr
		}
	case "resync":
		if err = needPeer(); err == nil {
			err = v.Resync(req.Peer)
		}
	case "disconnect":
		if err = needPeer(); err == nil {
			err = v.Disconnect(req.Peer)
		}
	case "connect":
		if err = needPeer(); err == nil {
			err = v.Connect(req.Peer)
		}
	default:
		return nil, fmt.Errorf("unknown volume action %q: use status, promote, demote, verify, resync, disconnect or connect", req.Action)
	}
	if err != nil {
		return nil, err
	}
	res.Volumes = []nbdrepl.VolumeStatus{v.Status()}
	return res, nil
}

// Volume sends a request about this node's volumes to the daemon. Verify
// may take as long as reading the volume.
func (c Client) Volume(req VolumeRequest) (*VolumeResponse, error) {
	r, err := c.call(request{Op: "volume", Volume: &req}, 30*time.Minute)
	if err != nil {
		return nil, err
	}
	if r.Volume == nil {
		return nil, fmt.Errorf("the daemon at %s sent no answer about volumes", c.Socket)
	}
	return r.Volume, nil
}

// volumeGauges are the volume metrics and their help.
var volumeGauges = []struct{ name, help string }{
	{"tachy_volume_primary", "1 when this node is the volume's primary."},
	{"tachy_volume_up_to_date", "1 when this node's data of the volume is UpToDate."},
	{"tachy_volume_suspended_io", "I/O requests of the volume waiting for quorum."},
	{"tachy_volume_peer_connected", "1 while the primary replicates to the peer."},
	{"tachy_volume_out_of_sync_bytes", "Bytes the peer may lack (its out-of-sync chunks), as the primary sees it."},
	{"tachy_volume_resync_done_ratio", "Fraction of the peer's resync done (1 when in sync)."},
	{"tachy_volume_replication_latency_seconds", "Replication latency to the peer: moving average of queued to applied there."},
}

// writeVolumeGauges renders the metrics of the volumes this node runs.
func (d *Daemon) writeVolumeGauges(w io.Writer) {
	if d.volumes == nil {
		return
	}
	values := map[string]map[string]float64{}
	for _, g := range volumeGauges {
		values[g.name] = map[string]float64{}
	}
	for _, v := range d.volumes.Volumes() {
		st := v.Status()
		vl := labels("volume", st.Name)
		values["tachy_volume_primary"][vl] = b2f(st.Role == nbdrepl.RolePrimary)
		values["tachy_volume_up_to_date"][vl] = b2f(st.Disk == "UpToDate")
		values["tachy_volume_suspended_io"][vl] = float64(st.Suspended)
		if st.Role != nbdrepl.RolePrimary {
			continue
		}
		for _, p := range st.Peers {
			pl := labels("volume", st.Name, "peer", p.Name)
			values["tachy_volume_peer_connected"][pl] = b2f(p.State == string(nbdrepl.PeerUpToDate) || p.State == string(nbdrepl.PeerSyncTarget))
			values["tachy_volume_out_of_sync_bytes"][pl] = float64(p.OutOfSync)
			values["tachy_volume_resync_done_ratio"][pl] = p.ResyncDone
			values["tachy_volume_replication_latency_seconds"][pl] = p.LatencyUs / 1e6
		}
	}
	for _, g := range volumeGauges {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s gauge\n", g.name, g.help, g.name)
		for _, l := range sortedKeys(values[g.name]) {
			fmt.Fprintf(w, "%s %s\n", series(g.name, l), num(values[g.name][l]))
		}
	}
}

// volumeStatuses returns the status of every volume this node runs, by
// name.
func (d *Daemon) volumeStatuses() []nbdrepl.VolumeStatus {
	if d.volumes == nil {
		return nil
	}
	var out []nbdrepl.VolumeStatus
	for _, v := range d.volumes.Volumes() {
		out = append(out, v.Status())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
