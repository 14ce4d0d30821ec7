package controller

import (
	"sync"
	"time"

	"github.com/tachy-ha/tachy/fence"
)

// watchdogCheck is how often the daemon decides whether to feed its
// watchdog: well under the loss settle time (250 ms at least), so a
// stalled heartbeat sender is noticed before the DC records this node
// lost.
const watchdogCheck = 50 * time.Millisecond

// watchdog feeds local.watchdog while fence.SelfFence allows it (see
// fence/watchdog.go). stop ends it: a clean stop disarms the device,
// unless this node has decided to be reset.
type watchdog struct {
	stop func()
}

func (d *Daemon) startWatchdog() (*watchdog, error) {
	path := d.cfg.Local.Watchdog
	if path == "" {
		return &watchdog{stop: func() {}}, nil
	}
	dev, err := fence.OpenWatchdog(path, d.cfg.Local.WatchdogTimeout)
	if err != nil {
		return nil, err
	}
	d.log.Info("watchdog armed: this node is reset if it loses quorum or its heartbeat sender stalls", "device", path, "timeout", dev.Timeout())
	sf := &fence.SelfFence{SenderStall: d.lossSettle()}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	doomed := false
	go func() {
		defer wg.Done()
		tick := time.NewTicker(watchdogCheck)
		defer tick.Stop()
		var fed time.Time
		for {
			select {
			case <-done:
				return
			case now := <-tick.C:
				d.mu.Lock()
				quorate := d.qs.Quorate
				d.mu.Unlock()
				ok, why := sf.Feed(now, quorate, d.hb.SentFrames())
				if !ok {
					if !doomed {
						doomed = true
						d.log.Error("self-fencing: no longer feeding the watchdog", "reason", why, "reset_within", dev.Timeout())
					}
					continue
				}
				if now.Sub(fed) >= dev.Timeout()/4 {
					if err := dev.Keepalive(); err != nil {
						d.log.Error("watchdog keepalive failed; the node may be reset", "err", err)
					}
					fed = now
				}
			}
		}
	}()
	return &watchdog{stop: func() {
		close(done)
		wg.Wait()
		if doomed {
			return // the reset must come
		}
		if err := dev.Disarm(); err != nil {
			d.log.Warn("watchdog: could not disarm it (nowayout?); the node will be reset", "err", err)
		}
	}}, nil
}
