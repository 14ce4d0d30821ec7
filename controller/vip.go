package controller

import (
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/tachy-ha/tachy/vip"
)

// newVIPManager holds this node's floating IPs, with the XDP ARP responder
// where it attaches.
func newVIPManager(stateDir string, log *slog.Logger) *vip.Manager {
	m := vip.NewManager()
	m.StateFile = filepath.Join(stateDir, "vips")
	m.Responder = true
	m.Logf = func(format string, args ...any) { log.Warn(fmt.Sprintf(format, args...)) }
	return m
}
