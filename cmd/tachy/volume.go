package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/tachy-ha/tachy/controller"
	"github.com/tachy-ha/tachy/nbdrepl"
)

// tachy volume: replicated volumes (nbdrepl), as drbdadm. create works on
// local files; the other verbs ask this node's daemon, which runs the
// volumes of its ocf:tachy:volume resources.
type volumeCmd struct {
	Create     volumeCreateCmd     `cmd:"" help:"Create a volume's backing file (if missing) and its metadata on this node (drbdadm create-md)."`
	Status     volumeStatusCmd     `cmd:"" help:"Role, disk state, quorum and peers of this node's volumes."`
	Promote    volumePromoteCmd    `cmd:"" help:"Make this node the volume's primary (refused unless its data is UpToDate and no other primary is connected)."`
	Demote     volumeDemoteCmd     `cmd:"" help:"Make this node's primary a secondary: its NBD export stops."`
	Verify     volumeVerifyCmd     `cmd:"" help:"Compare the primary's data with a peer's, chunk by chunk, online (--repair resyncs what differs)."`
	Resync     volumeResyncCmd     `cmd:"" help:"Copy the whole volume to a peer again (drbdadm invalidate-remote)."`
	Disconnect volumeDisconnectCmd `cmd:"" help:"Disconnect a peer and keep it disconnected (what is written meanwhile is resynced after connect)."`
	Connect    volumeConnectCmd    `cmd:"" help:"Reconnect a peer (also after a split brain was refused)."`
}

type volumeCreateCmd struct {
	Name        string `arg:"" help:"Volume id."`
	Backing     string `required:"" help:"Backing block device or file." type:"path"`
	Size        string `help:"Create the backing file with this size (K, M, G suffixes) if it does not exist."`
	Meta        string `help:"Metadata file (default: the backing path with .meta appended)." type:"path"`
	Granularity int64  `help:"Bytes per bit of the out-of-sync bitmaps (a power of two)." default:"4096"`
}

func (c *volumeCreateCmd) Run() error {
	meta := c.Meta
	if meta == "" {
		meta = c.Backing + ".meta"
	}
	if st, err := os.Stat(meta); err == nil && st.Size() > 0 {
		return fmt.Errorf("%s already holds metadata: volume %s exists on this node (remove the file only to start over: its generations and bitmaps are lost, and the next connection is a full sync)", meta, c.Name)
	}
	if _, err := os.Stat(c.Backing); errors.Is(err, os.ErrNotExist) {
		if c.Size == "" {
			return fmt.Errorf("%s does not exist: give --size to create it", c.Backing)
		}
		n, err := nbdrepl.ParseSize(c.Size)
		if err != nil {
			return fmt.Errorf("--size %q: %v", c.Size, err)
		}
		f, err := os.OpenFile(c.Backing, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		err = f.Truncate(n)
		f.Close()
		if err != nil {
			return err
		}
	}
	be, err := nbdrepl.OpenFile(c.Backing, false)
	if err != nil {
		return err
	}
	defer be.Close()
	m, err := nbdrepl.OpenMetaFile(meta, nbdrepl.MetaOptions{Size: be.Size(), Granularity: c.Granularity})
	if err != nil {
		return err
	}
	if err := m.Close(); err != nil {
		return err
	}
	fmt.Printf("volume %s: %d bytes on %s, metadata in %s\n", c.Name, be.Size(), c.Backing, meta)
	fmt.Printf("do the same on every node, then run it as a promotable clone:\n  tachy resource create %s ocf:tachy:volume volume=%s backing=%s peers=NODE=HOST:PORT,... secret_file=FILE nbd=:10809 --promotable\n(to serve NBD over TLS add tls=require tls_cert=CERT.pem tls_key=KEY.pem, and tls_ca=CA.pem to require client certificates)\n", c.Name, c.Name, c.Backing)
	return nil
}

type volumeStatusCmd struct {
	Name string `arg:"" optional:"" help:"Volume id (default: every volume on this node)."`
	JSON bool   `help:"Print JSON."`
}

func (c *volumeStatusCmd) Run(g *globals) error {
	res, err := controller.Client{Socket: g.Socket}.Volume(controller.VolumeRequest{Action: "status", Name: c.Name})
	if err != nil {
		return err
	}
	if c.JSON {
		return printJSON(res.Volumes)
	}
	if len(res.Volumes) == 0 {
		fmt.Println("no volume runs on this node")
	}
	for _, v := range res.Volumes {
		printVolume(v)
	}
	return nil
}

func printVolume(v nbdrepl.VolumeStatus) {
	fmt.Printf("volume %s on %s: %s, disk %s, protocol %s, quorum %s (on-no-quorum %s)", v.Name, v.Node, v.Role, v.Disk, v.Protocol, v.Quorum, v.OnNoQuorum)
	if v.NBD != "" {
		fmt.Printf(", NBD on %s", v.NBD)
	}
	if v.Primary != "" {
		fmt.Printf(", primary %s", v.Primary)
	}
	if v.Suspended > 0 {
		fmt.Printf(", %d I/O suspended for quorum", v.Suspended)
	}
	fmt.Println()
	if v.SplitBrain != "" {
		fmt.Printf("  split brain: %s\n", v.SplitBrain)
	}
	for _, p := range v.Peers {
		fmt.Printf("  peer %s (%s): %s", p.Name, p.Addr, p.State)
		if p.OutOfSync > 0 {
			fmt.Printf(", %d bytes out of sync, resync %.1f%% done", p.OutOfSync, 100*p.ResyncDone)
		}
		if p.Manual {
			fmt.Print(", disconnected by the operator (tachy volume connect)")
		}
		if p.Err != "" && p.State != string(nbdrepl.PeerUpToDate) {
			fmt.Printf(" (%s)", p.Err)
		}
		fmt.Println()
	}
}

// volumeAct runs one action and prints the volume's state after it.
func volumeAct(g *globals, req controller.VolumeRequest) error {
	res, err := controller.Client{Socket: g.Socket}.Volume(req)
	if err != nil {
		return err
	}
	if res.Verify != nil {
		r := res.Verify
		fmt.Printf("verify %s against %s: %d chunks compared, %d differ", req.Name, req.Peer, r.Chunks, r.Differ)
		if req.Repair && r.Differ > 0 {
			fmt.Print(" (being resynced)")
		} else if r.Differ > 0 {
			fmt.Printf(" (tachy volume verify %s %s --repair resyncs them)", req.Name, req.Peer)
		}
		fmt.Println()
	}
	for _, v := range res.Volumes {
		printVolume(v)
	}
	return nil
}

type volumePromoteCmd struct {
	Name  string `arg:"" help:"Volume id."`
	Force bool   `help:"Promote data that is Consistent but not known UpToDate (only if you know no other node has newer data)."`
}

func (c *volumePromoteCmd) Run(g *globals) error {
	return volumeAct(g, controller.VolumeRequest{Action: "promote", Name: c.Name, Force: c.Force})
}

type volumeDemoteCmd struct {
	Name string `arg:"" help:"Volume id."`
}

func (c *volumeDemoteCmd) Run(g *globals) error {
	return volumeAct(g, controller.VolumeRequest{Action: "demote", Name: c.Name})
}

type volumeVerifyCmd struct {
	Name   string `arg:"" help:"Volume id."`
	Peer   string `arg:"" help:"Peer node to compare with."`
	Repair bool   `help:"Resync the chunks that differ from the primary."`
}

func (c *volumeVerifyCmd) Run(g *globals) error {
	return volumeAct(g, controller.VolumeRequest{Action: "verify", Name: c.Name, Peer: c.Peer, Repair: c.Repair})
}

type volumeResyncCmd struct {
	Name string `arg:"" help:"Volume id."`
	Peer string `arg:"" help:"Peer node to resync."`
}

func (c *volumeResyncCmd) Run(g *globals) error {
	return volumeAct(g, controller.VolumeRequest{Action: "resync", Name: c.Name, Peer: c.Peer})
}

type volumeDisconnectCmd struct {
	Name string `arg:"" help:"Volume id."`
	Peer string `arg:"" help:"Peer node."`
}

func (c *volumeDisconnectCmd) Run(g *globals) error {
	return volumeAct(g, controller.VolumeRequest{Action: "disconnect", Name: c.Name, Peer: c.Peer})
}

type volumeConnectCmd struct {
	Name string `arg:"" help:"Volume id."`
	Peer string `arg:"" help:"Peer node."`
}

func (c *volumeConnectCmd) Run(g *globals) error {
	return volumeAct(g, controller.VolumeRequest{Action: "connect", Name: c.Name, Peer: c.Peer})
}
