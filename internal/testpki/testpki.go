// Package testpki makes throwaway X.509 certificates for tests of TLS: a
// CA, a server certificate for localhost (127.0.0.1, ::1) and a client
// certificate, ECDSA P-256, written as PEM under the names libnbd
// (tls-certificates=DIR) and QEMU (tls-creds-x509,dir=DIR) look for.
package testpki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// PKI is a CA and the certificates it issued, as files and in memory.
type PKI struct {
	// Dir holds every file: ca-cert.pem, server-cert.pem,
	// server-key.pem, client-cert.pem and client-key.pem. As a client's
	// certificate directory it presents the client certificate.
	Dir string
	// AnonDir holds only ca-cert.pem: a client that checks the server
	// but has no certificate of its own.
	AnonDir string

	CA, ServerCert, ServerKey, ClientCert, ClientKey string // paths in Dir

	Pool   *x509.CertPool  // the CA, for RootCAs or ClientCAs
	Server tls.Certificate // the server's certificate and key
	Client tls.Certificate // the client's certificate and key
}

// New makes a CA and its server and client certificates in t.TempDir().
func New(t testing.TB) *PKI {
	t.Helper()
	p := &PKI{Dir: t.TempDir(), AnonDir: t.TempDir(), Pool: x509.NewCertPool()}
	now := time.Now()
	caKey, _, caPEM, ca := issue(t, &x509.Certificate{
		Subject:               pkix.Name{CommonName: "tachy test CA"},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
	}, nil, nil)
	p.Pool.AddCert(ca)
	leaf := func(cn string, usage x509.ExtKeyUsage) *x509.Certificate {
		// QEMU refuses certificates whose (critical) key usage lacks
		// key encipherment, even for ECDSA keys.
		return &x509.Certificate{
			Subject:               pkix.Name{CommonName: cn},
			BasicConstraintsValid: true,
			KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
			ExtKeyUsage:           []x509.ExtKeyUsage{usage},
			NotBefore:             now.Add(-time.Hour),
			NotAfter:              now.Add(24 * time.Hour),
		}
	}
	srv := leaf("localhost", x509.ExtKeyUsageServerAuth)
	srv.DNSNames = []string{"localhost"}
	srv.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	_, srvKey, srvPEM, _ := issue(t, srv, ca, caKey)
	_, cliKey, cliPEM, _ := issue(t, leaf("tachy test client", x509.ExtKeyUsageClientAuth), ca, caKey)

	write := func(dir, name string, data []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	p.CA = write(p.Dir, "ca-cert.pem", caPEM)
	write(p.AnonDir, "ca-cert.pem", caPEM)
	p.ServerCert = write(p.Dir, "server-cert.pem", srvPEM)
	p.ServerKey = write(p.Dir, "server-key.pem", srvKey)
	p.ClientCert = write(p.Dir, "client-cert.pem", cliPEM)
	p.ClientKey = write(p.Dir, "client-key.pem", cliKey)
	var err error
	if p.Server, err = tls.X509KeyPair(srvPEM, srvKey); err != nil {
		t.Fatal(err)
	}
	if p.Client, err = tls.X509KeyPair(cliPEM, cliKey); err != nil {
		t.Fatal(err)
	}
	return p
}

// issue makes a key and a certificate from tmpl, signed by parent (nil:
// self-signed), and returns the key, both PEM-encoded and the parsed
// certificate.
func issue(t testing.TB, tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (key *ecdsa.PrivateKey, keyPEM, certPEM []byte, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if tmpl.SerialNumber, err = rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120)); err != nil {
		t.Fatal(err)
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	if cert, err = x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), cert
}
