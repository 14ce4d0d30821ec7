package nbdrepl

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"
)

// conn is one connection in the transmission phase. Its reader goroutine
// (run) decodes requests and queues them to a bounded pool of workers; the
// workers execute them against the backend and hand their replies to a
// single writer goroutine, which sends them in completion order.
type conn struct {
	s   *Server
	exp *Export
	be  Backend
	lim limits
	nc  net.Conn
	br  *bufio.Reader
	log *slog.Logger

	jobs    chan *job
	replies chan *job
	budget  *semaphore.Weighted
	maxCost int64

	// epoch collects the write-type requests queued since the last FLUSH;
	// a FLUSH waits for its epoch and all earlier ones.
	epoch *epoch

	// pending counts the requests handed to the workers (or to the
	// writer) whose replies are not sent yet.
	pending atomic.Int64
	// wmu guards bw and werr: the writer goroutine and the reader (for a
	// request it ran itself) send replies.
	wmu  sync.Mutex
	bw   *bufio.Writer
	werr error

	// readerDone receives why the session ended from whichever
	// goroutine was reading last; inline counts requests run by a
	// goroutine that handed reading over.
	readerDone chan<- string
	inline     sync.WaitGroup
}

type job struct {
	req   Request
	data  []byte // write payload, or read result
	errno uint32
	cost  int64
	epoch *epoch // write-type requests: the epoch they belong to
	wait  *epoch // FLUSH: the epoch it waits for
}

// epoch is a group of write-type requests. done is closed once all of them
// and every earlier epoch have completed.
type epoch struct {
	wg   sync.WaitGroup
	done chan struct{}
	prev *epoch // read only by the goroutine seal starts
}

// seal stops adding requests to e (only the reader adds, and it seals) and
// starts the goroutine that closes e.done once they and prev are complete.
func (e *epoch) seal() {
	go func() {
		e.wg.Wait()
		if e.prev != nil {
			<-e.prev.done
			e.prev = nil
		}
		close(e.done)
	}()
}

// shutdownGrace bounds how long replies may take to send once the server
// is shutting down.
const shutdownGrace = 5 * time.Second

func newConn(s *Server, exp *Export, nc net.Conn, br *bufio.Reader, log *slog.Logger) *conn {
	workers := s.Workers
	if workers <= 0 {
		workers = DefaultWorkers
	}
	budget := s.MaxInflightBytes
	if budget <= 0 {
		budget = 64 << 20
	}
	return &conn{
		s: s, exp: exp, be: exp.Backend, lim: s.limits(exp), nc: nc, br: br, log: log,
		jobs:    make(chan *job, workers),
		replies: make(chan *job, 2*workers),
		budget:  semaphore.NewWeighted(budget),
		maxCost: budget,
		epoch:   &epoch{done: make(chan struct{})},
		bw:      bufio.NewWriterSize(nc, 256<<10),
	}
}

// cost is the budget a request holds until its reply is sent: its payload
// plus a little for the request itself, so small requests are bounded too.
func (c *conn) cost(r Request) int64 {
	n := int64(4096)
	if r.Type == CmdRead || r.Type == CmdWrite {
		n += int64(r.Length)
	}
	return min(n, c.maxCost)
}

// run serves the connection until the client disconnects, a protocol error
// occurs or ctx is cancelled; requests already read are always completed
// and answered before the connection is closed.
func (c *conn) run(ctx context.Context) {
	workers := cap(c.jobs)
	var wwg sync.WaitGroup
	for range workers {
		wwg.Add(1)
		go func() {
			defer wwg.Done()
			for j := range c.jobs {
				c.execute(j)
				c.replies <- j
			}
		}()
	}
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.writer()
	}()
	// Cancelling ctx interrupts the blocking read; requests in flight
	// still complete and are answered, unless the client stops reading
	// for longer than shutdownGrace.
	stop := context.AfterFunc(ctx, func() {
		c.nc.SetReadDeadline(time.Now())
		c.nc.SetWriteDeadline(time.Now().Add(shutdownGrace))
	})
	readerDone := make(chan string, 1)
	c.readerDone = readerDone
	c.reader(ctx)
	reason := <-readerDone
	stop()
	c.inline.Wait()
	close(c.jobs)
	wwg.Wait()
	close(c.replies)
	<-writerDone
	c.epoch.seal() // let the last epoch's goroutine exit
	if reason != "" {
		c.log.Info("nbd: closing connection", "reason", reason)
	} else {
		c.log.Debug("nbd: client disconnected")
	}
}

// handedOff is read's answer when another goroutine took over reading.
const handedOff = "\x00handed off"

// reader reads requests (read) and, when the session ends, sends why on
// c.readerDone, unless it handed reading over to another goroutine.
func (c *conn) reader(ctx context.Context) {
	if why := c.read(ctx); why != handedOff {
		c.readerDone <- why
	}
}

// read decodes requests until the session ends and returns why, or "" for
// an orderly end (NBD_CMD_DISC or the client closing between requests).
func (c *conn) read(ctx context.Context) string {
	var hdr [requestSize]byte
	for {
		if _, err := io.ReadFull(c.br, hdr[:]); err != nil {
			switch {
			case ctx.Err() != nil:
				return "server shutting down"
			case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
				return ""
			}
			return "read: " + err.Error()
		}
		req, err := ParseRequest(hdr[:])
		if err != nil {
			return err.Error()
		}
		if ctx.Err() != nil {
			return "server shutting down"
		}
		if req.Type == CmdDisc {
			return ""
		}
		verdict, errno, why := checkRequest(req, c.lim)
		if verdict == verdictFatal {
			return why
		}
		j := &job{req: req, errno: errno}
		if verdict == verdictError {
			c.log.Debug("nbd: request refused", "type", req.Type, "offset", req.Offset, "length", req.Length, "errno", errno, "why", why)
			if req.Type == CmdWrite {
				// The payload is still on the wire: skip it.
				if _, err := io.CopyN(io.Discard, c.br, int64(req.Length)); err != nil {
					return "read: " + err.Error()
				}
			}
			c.pending.Add(1)
			c.replies <- j
			continue
		}
		j.cost = c.cost(req)
		if err := c.budget.Acquire(context.Background(), j.cost); err != nil {
			return err.Error()
		}
		if req.Type == CmdWrite {
			j.data = getBuf(int(req.Length))
			if _, err := io.ReadFull(c.br, j.data); err != nil {
				c.budget.Release(j.cost)
				return "read write payload: " + err.Error()
			}
		}
		switch req.Type {
		case CmdWrite, CmdTrim, CmdWriteZeroes:
			j.epoch = c.epoch
			j.epoch.wg.Add(1)
		case CmdFlush:
			j.wait = c.epoch
			j.wait.seal()
			c.epoch = &epoch{done: make(chan struct{}), prev: j.wait}
		}
		if req.Type != CmdFlush && req.Length <= inlineMax && c.pending.Load() == 0 && c.br.Buffered() == 0 {
			// Nothing else in flight and no request waiting: run it
			// here and answer at once. The request's latency then
			// includes no goroutine wake-up (a queue-depth-1
			// client's whole latency). If it takes longer than
			// inlineHandoff, a new goroutine takes over reading, so
			// a slow request never holds up the others for long.
			// Not a FLUSH (it waits for earlier writes), nor a large
			// request (a sequential stream would lose the workers'
			// overlap).
			c.pending.Add(1)
			var state atomic.Int32 // 0 running, 1 done, 2 handed off
			c.inline.Add(1)
			t := time.AfterFunc(inlineHandoff, func() {
				if state.CompareAndSwap(0, 2) {
					go c.reader(ctx)
				}
			})
			c.execute(j)
			done := state.CompareAndSwap(0, 1)
			t.Stop()
			c.reply(j, true)
			c.pending.Add(-1)
			c.inline.Done()
			if !done {
				return handedOff
			}
			continue
		}
		c.pending.Add(1)
		c.jobs <- j
	}
}

// DefaultWorkers is the default number of requests run concurrently per
// connection. A replicated write under protocol C holds its worker for a
// network round trip, so it takes many to keep a deep queue busy.
const DefaultWorkers = 128

// inlineMax is the largest request the reader runs itself when nothing
// else is in flight.
const inlineMax = 64 << 10

// inlineHandoff is how long a request the reader runs itself may hold up
// reading: then another goroutine takes over. It is longer than a protocol
// C write's round trip, so a queue-depth-1 client's requests run in the
// reader without any goroutine hand-over.
const inlineHandoff = time.Millisecond

// ownedWriter is implemented by backends that may keep a write's payload
// after returning (the server never uses it again), such as Replicated,
// which queues it to its secondaries without copying it and gives it back
// to the pool when they have all sent it.
type ownedWriter interface {
	WriteOwned(p []byte, off int64, fua bool) (int, error)
}

// fuaWriter is implemented by backends that can write and make the write
// durable in one call (NBD_CMD_FLAG_FUA) more cheaply than WriteAt then
// Sync, such as Replicated.
type fuaWriter interface {
	WriteAtFUA(p []byte, off int64) (int, error)
}

// execute runs one request against the backend and sets its errno (and, for
// a read, its data).
func (c *conn) execute(j *job) {
	r := j.req
	off, n := int64(r.Offset), int64(r.Length)
	fua := r.Flags&CmdFlagFUA != 0 && c.lim.flags&FlagSendFUA != 0
	var err error
	switch r.Type {
	case CmdRead:
		j.data = getBuf(int(n))
		var got int
		got, err = c.be.ReadAt(j.data, off)
		if err == io.EOF && int64(got) == n {
			err = nil
		} else if err == nil && int64(got) != n {
			err = io.ErrUnexpectedEOF
		}
	case CmdWrite:
		if ow, ok := c.be.(ownedWriter); ok {
			// Given away: the backend pools it when done with it.
			_, err = ow.WriteOwned(j.data, off, fua)
			fua = false
		} else {
			if fw, ok := c.be.(fuaWriter); ok && fua {
				_, err = fw.WriteAtFUA(j.data, off)
				fua = false
			} else {
				_, err = c.be.WriteAt(j.data, off)
			}
			putBuf(j.data)
		}
		j.data = nil
	case CmdTrim:
		err = c.be.Trim(off, n)
	case CmdWriteZeroes:
		err = c.be.WriteZeroes(off, n, r.Flags&CmdFlagNoHole == 0)
	case CmdFlush:
		<-j.wait.done
		err = c.be.Flush()
		fua = false
	}
	if err == nil && fua && r.Type != CmdRead {
		err = c.be.Sync(off, n)
	}
	if j.epoch != nil {
		j.epoch.wg.Done()
	}
	if err != nil {
		j.errno = errnoOf(err)
		if r.Type == CmdRead {
			j.data = nil
		}
		c.log.Warn("nbd: request failed", "type", r.Type, "offset", r.Offset, "length", r.Length, "err", err, "errno", j.errno)
	}
}

// reply sends j's reply (flushing if flush), then releases its budget.
// After a write error nothing more is sent.
func (c *conn) reply(j *job, flush bool) {
	c.wmu.Lock()
	if c.werr == nil {
		var hdr [replySize]byte
		binary.BigEndian.PutUint32(hdr[0:4], magicReply)
		binary.BigEndian.PutUint32(hdr[4:8], j.errno)
		binary.BigEndian.PutUint64(hdr[8:16], j.req.Handle)
		_, c.werr = c.bw.Write(hdr[:])
		if c.werr == nil && j.req.Type == CmdRead && j.errno == 0 {
			_, c.werr = c.bw.Write(j.data)
		}
		if c.werr == nil && flush {
			c.werr = c.bw.Flush()
		}
		if c.werr != nil {
			c.log.Info("nbd: sending reply failed; closing", "err", c.werr)
			c.nc.Close() // unblocks the reader
		}
	}
	c.wmu.Unlock()
	if j.data != nil {
		putBuf(j.data) // a read's reply: written out or copied by bw
		j.data = nil
	}
	if j.cost > 0 {
		c.budget.Release(j.cost)
	}
}

// writer sends the workers' replies as they come, flushing when no other
// is waiting. After a write error it keeps draining (so workers never
// block) but sends nothing more.
func (c *conn) writer() {
	for j := range c.replies {
		c.reply(j, len(c.replies) == 0)
		c.pending.Add(-1)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr == nil {
		if err := c.bw.Flush(); err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, os.ErrDeadlineExceeded) {
			c.log.Debug("nbd: final flush", "err", err)
		}
	}
}
