package replica

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A node joins: with the token it gets a certificate that works in the
// cluster; with a wrong token, or for a node not configured, it gets
// nothing; a connection without a certificate can do nothing else.
func TestJoin(t *testing.T) {
	members := t.TempDir()
	if err := InitPKI(members, "test", []string{"n1"}); err != nil {
		t.Fatal(err)
	}
	token, err := NewJoinToken(members)
	if err != nil {
		t.Fatal(err)
	}
	conf, err := LoadTLS(members, "n1")
	if err != nil {
		t.Fatal(err)
	}
	nw, err := ListenTLS("127.0.0.1:0", "", conf, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer nw.Close()
	nw.ServeJoins(&JoinServer{Dir: members, Allowed: func(n string) bool { return n == "n1" || n == "n2" || n == "n3" },
		Vacant: func(n string) error {
			if n == "n1" {
				return errors.New("node n1 is up")
			}
			return nil
		}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	joiner := t.TempDir()
	if err := Join(ctx, nw.Addr(), "n2", "bad"+token, joiner); err == nil || !strings.Contains(err.Error(), "join token does not match") {
		t.Fatalf("wrong token: %v", err)
	}
	if err := Join(ctx, nw.Addr(), "n9", token, joiner); err == nil || !strings.Contains(err.Error(), `"n9" is not in this cluster's configuration`) {
		t.Fatalf("unknown node: %v", err)
	}
	// A running node's name is not given out, token or not.
	if err := Join(ctx, nw.Addr(), "n1", token, t.TempDir()); err == nil || !strings.Contains(err.Error(), "node n1 is up") {
		t.Fatalf("a certificate for a running node: %v", err)
	}
	if _, err := os.Stat(filepath.Join(joiner, "n2.key")); !os.IsNotExist(err) {
		t.Fatal("a refused join wrote a key")
	}
	if err := Join(ctx, nw.Addr(), "n2", token, joiner); err != nil {
		t.Fatal(err)
	}
	// The new certificate is accepted by the members: a forwarded read.
	c2, err := LoadTLS(joiner, "n2")
	if err != nil {
		t.Fatal(err)
	}
	n2, err := ListenTLS("127.0.0.1:0", "", c2, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer n2.Close()
	nw.Handle(func(ctx context.Context, from string, req []byte) []byte {
		return append([]byte("echo from "+from+": "), req...)
	})
	out, err := n2.Call(ctx, nw.Addr(), []byte("hello"))
	if err != nil || string(out) != "echo from n2: hello\n" {
		t.Fatalf("a call with the joined certificate: %q %v", out, err)
	}
	// Without a certificate, nothing but a join request is answered.
	anon, err := tls.Dial("tcp", nw.Addr(), &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
	if err != nil {
		t.Fatal(err)
	}
	anon.Write([]byte("Xhello\n"))
	anon.SetReadDeadline(time.Now().Add(5 * time.Second))
	if b, err := io.ReadAll(anon); err == nil && len(b) > 0 {
		t.Fatalf("a call without a certificate was answered: %q", b)
	}
	anon.Close()
	if err := Join(ctx, nw.Addr(), "n3", token, t.TempDir()); err != nil {
		t.Fatalf("second join: %v", err)
	}
}
