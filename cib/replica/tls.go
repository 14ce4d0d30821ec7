package replica

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// Nodes authenticate each other with certificates issued by the cluster's
// own CA (made by tachy cluster init): holding one is what makes a machine
// a member. Peers are dialled by address, so it is the CA signature, not a
// host name, that is checked, in both directions.

// PEM holds a certificate and its private key, PEM-encoded.
type PEM struct {
	Cert, Key []byte
}

// NewCA makes the cluster's certificate authority.
func NewCA(cluster string) (PEM, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return PEM{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "tachy cluster " + cluster + " CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(20, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return PEM{}, err
	}
	return encodePEM(der, key)
}

// IssueNode makes a node's certificate, signed by the CA.
func IssueNode(ca PEM, node string) (PEM, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return PEM{}, err
	}
	cert, err := signNode(ca, node, &key.PublicKey)
	if err != nil {
		return PEM{}, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return PEM{}, err
	}
	return PEM{Cert: cert, Key: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})}, nil
}

// signNode makes a node certificate for pub, signed by the CA.
func signNode(ca PEM, node string, pub any) ([]byte, error) {
	caCert, err := tls.X509KeyPair(ca.Cert, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("cluster CA: %w", err)
	}
	parent, err := x509.ParseCertificate(caCert.Certificate[0])
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: node},
		DNSNames:     []string{node},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(10, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, caCert.PrivateKey)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	return n
}

func encodePEM(der []byte, key *ecdsa.PrivateKey) (PEM, error) {
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return PEM{}, err
	}
	return PEM{
		Cert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		Key:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}),
	}, nil
}

// TLSConfig builds the mutual-TLS configuration for a node: its own
// certificate, and peers accepted only with a certificate from the CA.
func TLSConfig(caCert []byte, node PEM) (*tls.Config, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caCert) {
		return nil, errors.New("cluster CA certificate: no PEM certificate found")
	}
	cert, err := tls.X509KeyPair(node.Cert, node.Key)
	if err != nil {
		return nil, fmt.Errorf("node certificate: %w", err)
	}
	verify := func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) == 0 {
			// Only a server meets this (clients always get one): a node
			// joining without a certificate yet. The server lets such a
			// connection make a join request and nothing else.
			return nil
		}
		certs := make([]*x509.Certificate, len(raw))
		for i, r := range raw {
			c, err := x509.ParseCertificate(r)
			if err != nil {
				return err
			}
			certs[i] = c
		}
		inter := x509.NewCertPool()
		for _, c := range certs[1:] {
			inter.AddCert(c)
		}
		_, err := certs[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
		if err != nil {
			return fmt.Errorf("peer certificate is not from this cluster's CA: %w", err)
		}
		return nil
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS13,
		// The chain is checked against the cluster CA by verify, for
		// servers and clients alike; there is no host name to check.
		InsecureSkipVerify:    true,
		ClientAuth:            tls.RequestClientCert,
		VerifyPeerCertificate: verify,
	}, nil
}
