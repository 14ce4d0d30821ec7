package controller

import (
	"fmt"
	"log/slog"

	"github.com/tachy-ha/tachy/vip"
)

// newVIPManager holds this node's floating IPs, with the XDP ARP responder
// where it attaches.
func newVIPManager(log *slog.Logger) *vip.Manager {
	m := vip.NewManager()
	m.Responder = true
	m.Logf = func(format string, args ...any) { log.Warn(fmt.Sprintf(format, args...)) }
	return m
}
