package replica

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// The PKI directory (config cib.pki_dir) holds ca.crt and ca.key, the
// cluster's CA, and NODE.crt and NODE.key for each node.

// InitPKI makes the cluster CA in dir and a certificate for each node. It
// refuses to replace an existing CA: nodes holding certificates from it
// would be locked out.
func InitPKI(dir, cluster string, nodes []string) error {
	if _, err := os.Stat(filepath.Join(dir, "ca.crt")); err == nil {
		return fmt.Errorf("%s already holds a cluster CA (ca.crt); to issue certificates for new nodes use it, to start over move the directory away", dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	ca, err := NewCA(cluster)
	if err != nil {
		return err
	}
	if err := writePEM(dir, "ca", ca); err != nil {
		return err
	}
	for _, n := range nodes {
		if err := IssueNodeIn(dir, n); err != nil {
			return err
		}
	}
	// The founding members bootstrap the Raft cluster together; nodes
	// that join later must not (they would start a cluster of their own).
	if err := os.WriteFile(filepath.Join(dir, "members"), []byte(strings.Join(nodes, "\n")+"\n"), 0o644); err != nil {
		return err
	}
	_, err = NewJoinToken(dir)
	return err
}

// Founder reports whether node is one of the members the cluster was
// initialised with (pki/members); with no such file, every node is.
func Founder(dir, node string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "members"))
	if err != nil {
		return true
	}
	for _, m := range strings.Fields(string(b)) {
		if m == node {
			return true
		}
	}
	return false
}

// IssueNodeIn issues a certificate for node from the CA in dir.
func IssueNodeIn(dir, node string) error {
	ca, err := readPEM(dir, "ca")
	if err != nil {
		return err
	}
	p, err := IssueNode(ca, node)
	if err != nil {
		return err
	}
	return writePEM(dir, node, p)
}

func writePEM(dir, name string, p PEM) error {
	if err := os.WriteFile(filepath.Join(dir, name+".key"), p.Key, 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, name+".crt"), p.Cert, 0o644)
}

func readPEM(dir, name string) (PEM, error) {
	var p PEM
	var err error
	if p.Cert, err = os.ReadFile(filepath.Join(dir, name+".crt")); err != nil {
		return PEM{}, pkiErr(dir, err)
	}
	if p.Key, err = os.ReadFile(filepath.Join(dir, name+".key")); err != nil {
		return PEM{}, pkiErr(dir, err)
	}
	return p, nil
}

func pkiErr(dir string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: make the cluster's certificates with `tachy cluster init --config FILE` and copy %s to every node", err, dir)
	}
	return err
}

// LoadTLS reads ca.crt and the node's certificate and key from dir.
func LoadTLS(dir, node string) (*tls.Config, error) {
	ca, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		return nil, pkiErr(dir, err)
	}
	p, err := readPEM(dir, node)
	if err != nil {
		return nil, err
	}
	return TLSConfig(ca, p)
}
