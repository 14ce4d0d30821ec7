package replica

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Joining: a node added to the cluster after tachy cluster init gets its
// certificate from a member with `tachy cluster join`. The joiner has no
// certificate yet, so it connects without one (the member's CIB port lets
// such a connection do this and nothing else) and proves it knows the
// cluster's join token (pki/join.token, made by init) with an HMAC over its
// request; the member proves the same over its answer, so neither side
// trusts the other before the token checks out. The member signs the
// joiner's key (a CSR: the private key never leaves the joiner) if the
// node is one of the cluster's configured nodes.

const joinMagic = 'J'

type joinRequest struct {
	Node string `json:"node"`
	CSR  string `json:"csr"` // PEM
	MAC  string `json:"mac"` // hex HMAC-SHA256(token, node "\n" csr)
}

type joinReply struct {
	Cert  string `json:"cert,omitempty"`
	CA    string `json:"ca,omitempty"`
	MAC   string `json:"mac,omitempty"` // HMAC-SHA256(token, cert "\n" ca)
	Error string `json:"error,omitempty"`
}

func joinMAC(token []byte, parts ...string) string {
	m := hmac.New(sha256.New, token)
	m.Write([]byte(strings.Join(parts, "\n")))
	return hex.EncodeToString(m.Sum(nil))
}

// NewJoinToken writes a fresh join token into dir.
func NewJoinToken(dir string) (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	tok := hex.EncodeToString(b)
	return tok, os.WriteFile(filepath.Join(dir, "join.token"), []byte(tok+"\n"), 0o600)
}

// JoinServer answers join requests with the CA in dir, for the nodes
// allowed (the configured ones).
type JoinServer struct {
	Dir     string
	Allowed func(node string) bool
	// Vacant, when set, says why a certificate must not be issued for
	// node now (nil: it may be): a token holder must not get one for the
	// name of a node that is running, which would let it act as that
	// node. A node that re-joins after its disk was wiped is down then.
	Vacant func(node string) error
}

func (j *JoinServer) serve(c net.Conn, br *bufio.Reader) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	enc := json.NewEncoder(c)
	line, err := readLine(br, 64<<10)
	if err != nil {
		return
	}
	var req joinRequest
	if err := json.Unmarshal(line, &req); err != nil {
		enc.Encode(joinReply{Error: "malformed join request"})
		return
	}
	rep, err := j.answer(req)
	if err != nil {
		enc.Encode(joinReply{Error: err.Error()})
		return
	}
	enc.Encode(rep)
}

func (j *JoinServer) answer(req joinRequest) (joinReply, error) {
	tokenBytes, err := os.ReadFile(filepath.Join(j.Dir, "join.token"))
	if err != nil {
		return joinReply{}, errors.New("this member cannot admit nodes: it has no join token (pki/join.token); ask a member that has it")
	}
	token := []byte(strings.TrimSpace(string(tokenBytes)))
	if !hmac.Equal([]byte(joinMAC(token, req.Node, req.CSR)), []byte(req.MAC)) {
		return joinReply{}, errors.New("the join token does not match this cluster's")
	}
	if j.Allowed == nil || !j.Allowed(req.Node) {
		return joinReply{}, fmt.Errorf("node %q is not in this cluster's configuration: add it to every node's [[node]] list first", req.Node)
	}
	if j.Vacant != nil {
		if err := j.Vacant(req.Node); err != nil {
			return joinReply{}, err
		}
	}
	block, _ := pem.Decode([]byte(req.CSR))
	if block == nil {
		return joinReply{}, errors.New("the request carries no certificate request")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil || csr.CheckSignature() != nil {
		return joinReply{}, errors.New("the certificate request is malformed or not signed by its key")
	}
	if csr.Subject.CommonName != req.Node {
		return joinReply{}, fmt.Errorf("the certificate request is for %q, not %q", csr.Subject.CommonName, req.Node)
	}
	ca, err := readPEM(j.Dir, "ca")
	if err != nil {
		return joinReply{}, errors.New("this member cannot admit nodes: it does not hold the CA key (pki/ca.key)")
	}
	cert, err := signNode(ca, req.Node, csr.PublicKey)
	if err != nil {
		return joinReply{}, err
	}
	return joinReply{Cert: string(cert), CA: string(ca.Cert), MAC: joinMAC(token, string(cert), string(ca.Cert))}, nil
}

// Join asks the member at addr for a certificate for node, proving the
// token, and writes ca.crt, NODE.crt and NODE.key into dir.
func Join(ctx context.Context, addr, node, token, dir string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: node}}, key)
	if err != nil {
		return err
	}
	csr := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	// No CA to check the member against yet: the token's HMAC on the
	// answer is what authenticates it.
	d := &tls.Dialer{Config: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}, NetDialer: &net.Dialer{Timeout: 5 * time.Second}}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("reaching the member at %s: %w", addr, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(15 * time.Second))
	line, _ := json.Marshal(joinRequest{Node: node, CSR: csr, MAC: joinMAC([]byte(token), node, csr)})
	if _, err := c.Write(append(append([]byte{joinMagic}, line...), '\n')); err != nil {
		return err
	}
	var rep joinReply
	if err := json.NewDecoder(c).Decode(&rep); err != nil {
		return fmt.Errorf("no answer from the member at %s: %w", addr, err)
	}
	if rep.Error != "" {
		return fmt.Errorf("the member at %s refused: %s", addr, rep.Error)
	}
	if !hmac.Equal([]byte(joinMAC([]byte(token), rep.Cert, rep.CA)), []byte(rep.MAC)) {
		return fmt.Errorf("the answer from %s is not signed with the join token: it is not a member of this cluster", addr)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	p := PEM{Cert: []byte(rep.Cert), Key: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})}
	if _, err := TLSConfig([]byte(rep.CA), p); err != nil {
		return fmt.Errorf("the certificate from %s does not work: %w", addr, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.crt"), []byte(rep.CA), 0o644); err != nil {
		return err
	}
	return writePEM(dir, node, p)
}
