package controller

import (
	"context"
	"errors"
	"strconv"

	"github.com/tachy-ha/tachy/cib"
	"github.com/tachy-ha/tachy/lrmd"
)

// newVolumeAgent is the built-in ocf:tachy:volume agent of this node: it
// sets promotion scores as crm_attribute --promotion does (the node
// attribute master-<primitive>), and follows this node's quorum.
func newVolumeAgent(d *Daemon) *lrmd.VolumeAgent {
	return lrmd.NewVolumeAgent(lrmd.VolumeAgentOptions{
		Node:   d.local.Name,
		Logger: d.log,
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
	})
}
