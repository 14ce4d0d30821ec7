package nbdrepl

// TLS on the NBD export (NBD_OPT_STARTTLS): the modes, and loading the
// server's X.509 certificate, key and client CA from PEM files.

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"
)

// TLSMode says whether a Server offers TLS, as nbdkit's --tls does.
type TLSMode int

const (
	// TLSOff: no TLS (the protocol's NOTLS mode); NBD_OPT_STARTTLS is
	// answered NBD_REP_ERR_UNSUP.
	TLSOff TLSMode = iota
	// TLSAllow: a client may upgrade with NBD_OPT_STARTTLS or go on in
	// plain text (nbdkit --tls=on).
	TLSAllow
	// TLSRequire: until the client has started TLS, every option other
	// than NBD_OPT_STARTTLS and NBD_OPT_ABORT is answered
	// NBD_REP_ERR_TLS_REQD and NBD_OPT_EXPORT_NAME ends the session (the
	// protocol's FORCEDTLS mode; nbdkit --tls=require).
	TLSRequire
)

func (m TLSMode) String() string {
	switch m {
	case TLSOff:
		return "off"
	case TLSAllow:
		return "allow"
	case TLSRequire:
		return "require"
	}
	return fmt.Sprintf("TLSMode(%d)", int(m))
}

// ParseTLSMode parses "off" (or ""), "allow" or "require".
func ParseTLSMode(s string) (TLSMode, error) {
	switch s {
	case "", "off":
		return TLSOff, nil
	case "allow":
		return TLSAllow, nil
	case "require":
		return TLSRequire, nil
	}
	return TLSOff, fmt.Errorf("TLS mode %q: use off, allow (clients choose) or require", s)
}

// checkTLS validates a TLS mode and its configuration.
func checkTLS(m TLSMode, cfg *tls.Config) error {
	switch {
	case m < TLSOff || m > TLSRequire:
		return fmt.Errorf("unknown TLS mode %d", int(m))
	case m == TLSOff && cfg != nil:
		// Refuse rather than serve plain text to someone who meant TLS.
		return errors.New("a TLS configuration is given but the TLS mode is off: set it to allow or require, or drop the configuration")
	case m != TLSOff && (cfg == nil || len(cfg.Certificates) == 0 && cfg.GetCertificate == nil && cfg.GetConfigForClient == nil):
		return fmt.Errorf("TLS mode %s needs a TLS configuration with the server's certificate (LoadTLSConfig)", m)
	}
	return nil
}

// TLSFileError is LoadTLSConfig's error about one of its files.
type TLSFileError struct {
	File string // "cert", "key" or "ca"
	Path string
	Err  error
}

func (e *TLSFileError) Error() string {
	what := map[string]string{"cert": "TLS certificate", "key": "TLS private key", "ca": "TLS client CA"}[e.File]
	return fmt.Sprintf("%s %s: %v", what, e.Path, e.Err)
}

func (e *TLSFileError) Unwrap() error { return e.Err }

// LoadTLSConfig reads the server's certificate (PEM: the certificate, then
// any intermediate certificates) and private key (PEM) and returns a TLS
// configuration for Server.TLSConfig. With caFile (PEM, one or more
// certificates), clients must present a certificate signed by one of
// them (mutual TLS, as qemu-nbd's verify-peer and nbdkit's
// --tls-verify-peer). Errors are *TLSFileError naming the file at fault
// and what is wrong with it.
func LoadTLSConfig(certFile, keyFile, caFile string) (*tls.Config, error) {
	fileErr := func(which, path string, err error) error {
		return &TLSFileError{File: which, Path: path, Err: err}
	}
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fileErr("cert", certFile, err)
	}
	certs, err := parseCertsPEM(certPEM)
	if err != nil {
		return nil, fileErr("cert", certFile, fmt.Errorf("%w (it must hold the server's certificate, then any intermediate certificates)", err))
	}
	if now := time.Now(); now.After(certs[0].NotAfter) {
		return nil, fileErr("cert", certFile, fmt.Errorf("the certificate expired on %s: renew it", certs[0].NotAfter.Format(time.DateTime)))
	} else if now.Before(certs[0].NotBefore) {
		return nil, fileErr("cert", certFile, fmt.Errorf("the certificate is not valid before %s: check the clock", certs[0].NotBefore.Format(time.DateTime)))
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fileErr("key", keyFile, err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		// The certificates parsed: the key is at fault.
		return nil, fileErr("key", keyFile, fmt.Errorf("%w (it must hold the PEM private key of the certificate in %s)", err, certFile))
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	if caFile != "" {
		caPEM, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fileErr("ca", caFile, err)
		}
		cas, err := parseCertsPEM(caPEM)
		if err != nil {
			return nil, fileErr("ca", caFile, fmt.Errorf("%w (it must hold the certificates of the CAs that sign client certificates)", err))
		}
		pool := x509.NewCertPool()
		for _, c := range cas {
			pool.AddCert(c)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// parseCertsPEM returns every CERTIFICATE block of a PEM file, parsed;
// other blocks (a private key in the same file) are skipped.
func parseCertsPEM(b []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM certificate (-----BEGIN CERTIFICATE-----) in the file")
	}
	return certs, nil
}
