package controller

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/tachy-ha/tachy/cib"
	"github.com/tachy-ha/tachy/cib/replica"
	"github.com/tachy-ha/tachy/config"
)

// cibService is this node's replica of the CIB and its network endpoint.
type cibService struct {
	r    *replica.Replica
	net  *replica.Network
	stop chan struct{}
}

// cibAddr is where a node's CIB listens: its first address, cib.port.
func cibAddr(n *config.Node, port int) string {
	return netip.AddrPortFrom(n.Addresses[0], uint16(port)).String()
}

// startCIB opens the replicated CIB. A new cluster is bootstrapped with
// every configured node as a voter; every node does the same, which Raft
// allows, so no node has to be started first.
func startCIB(cfg *config.Config, local *config.Node, vacant func(string) error, log *slog.Logger) (*cibService, error) {
	conf, err := replica.LoadTLS(cfg.CIB.PKIDir, local.Name)
	if err != nil {
		return nil, fmt.Errorf("cib: %w", err)
	}
	nw, err := replica.ListenTLS(cibAddr(local, cfg.CIB.Port), "", conf, log)
	if err != nil {
		return nil, err
	}
	r, err := replica.Open(replica.Config{Node: local.Name, Dir: filepath.Join(cfg.Local.StateDir, "cib"), Transport: nw.Transport(), Log: log})
	if err != nil {
		nw.Close()
		return nil, err
	}
	var peers []replica.Peer
	for i := range cfg.Nodes {
		peers = append(peers, replica.Peer{Node: cfg.Nodes[i].Name, Address: cibAddr(&cfg.Nodes[i], cfg.CIB.Port)})
	}
	// The founding members bootstrap; a node that joined later waits for
	// the DC to add it.
	if replica.Founder(cfg.CIB.PKIDir, local.Name) {
		if err := r.BootstrapIfNew(peers); err != nil {
			r.Close()
			return nil, err
		}
	}
	r.ServeForwards(nw)
	nw.ServeJoins(&replica.JoinServer{Dir: cfg.CIB.PKIDir, Allowed: func(node string) bool {
		_, ok := cfg.Node(node)
		return ok
	}, Vacant: vacant})
	return &cibService{r: r, net: nw, stop: make(chan struct{})}, nil
}

func (s *cibService) close() {
	if s != nil {
		close(s.stop)
		s.r.Close()
	}
}

// CIBStatus is the CIB's part of the node status.
type CIBStatus struct {
	DC        string          `json:"dc"`
	IsDC      bool            `json:"is_dc"`
	Version   replica.Version `json:"version"`
	RaftState string          `json:"raft_state"`
	Term      uint64          `json:"term"`
	Members   []replica.Peer  `json:"members"`
	// On the DC: the transition pe plans for the current CIB, as
	// crm_simulate's Transition Summary lines.
	Transition      []string `json:"transition,omitempty"`
	TransitionOf    string   `json:"transition_of_version,omitempty"`
	TransitionError string   `json:"transition_error,omitempty"`
}

func (s *cibService) status() *CIBStatus {
	if s == nil {
		return nil
	}
	_, v := s.r.Current()
	dc, _ := s.r.DC()
	st := s.r.Stats()
	term, _ := strconv.ParseUint(st["term"], 10, 64)
	members, _ := s.r.Members()
	return &CIBStatus{DC: dc, IsDC: s.r.IsDC(), Version: v, RaftState: st["state"], Term: term, Members: members}
}

// CIBDocument is the CIB as the control socket returns it.
type CIBDocument struct {
	Version replica.Version `json:"version"`
	DC      string          `json:"dc"`
	XML     string          `json:"xml"`
	// Stale: no DC confirmed this copy is current (asked with
	// allowStale, when there was none); it may miss recent changes.
	Stale bool `json:"stale,omitempty"`
}

// document returns the CIB once it is current (a linearizable read).
// With allowStale, and no DC to confirm it within a moment, it returns
// this node's copy marked stale: status displays need something to show
// exactly when the cluster has no DC.
func (s *cibService) document(ctx context.Context, allowStale bool) (*CIBDocument, error) {
	fctx := ctx
	if allowStale {
		var cancel context.CancelFunc
		fctx, cancel = context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
	}
	stale := false
	c, v, err := s.r.Fresh(fctx, s.net)
	if err != nil {
		if !allowStale {
			return nil, err
		}
		c, v = s.r.Current()
		stale = true
	}
	var b bytes.Buffer
	if err := cib.Export(&b, c); err != nil {
		return nil, err
	}
	dc, _ := s.r.DC()
	return &CIBDocument{Version: v, DC: dc, XML: b.String(), Stale: stale}, nil
}

func (s *cibService) change(ctx context.Context, ch *cib.Change) (replica.Version, error) {
	return s.r.Change(ctx, s.net, ch)
}

// vacant is the join server's check: a certificate for a node's name is
// issued only while that node is down, so the join token cannot be used to
// act as a running member (this node included).
func (d *Daemon) vacant(node string) error {
	if node == d.local.Name {
		return fmt.Errorf("node %s is the member answering this request: a certificate for its name is issued only while it is down", node)
	}
	hb := d.membership.Load()
	if hb == nil {
		return errors.New("this member has not started its membership yet: ask again in a moment")
	}
	n, _ := d.cfg.Node(node)
	if n != nil && slices.Contains(hb.Up(), n.ID) {
		return fmt.Errorf("node %s is up in this cluster: a certificate for its name is issued only while it is down (stop tachy on %s first if it is being re-installed)", node, node)
	}
	return nil
}
