package auth

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
)

// ServerTLS is the REST server's TLS config: the certificate and key in
// certFile and keyFile, read again when either changes (so a renewed
// certificate is served without a restart). With clientCAFile, every client
// must present a certificate signed by one of the CAs in it (PEM); the file
// is read once, at start.
func ServerTLS(certFile, keyFile, clientCAFile string, log *slog.Logger) (*tls.Config, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("a TLS certificate needs both its certificate and its key file")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &certReloader{certFile: certFile, keyFile: keyFile, log: log}
	if err := r.reload(); err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.get}
	if clientCAFile != "" {
		pool, err := LoadCAs(clientCAFile)
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// LoadCAs reads a PEM file of CA certificates.
func LoadCAs(file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("CA file %s: no PEM certificate in it", file)
	}
	return pool, nil
}

// ClientTLS is a client's TLS config: it trusts the CAs in caFile (the
// system's when empty) and, with certFile and keyFile, presents that
// certificate to a server that asks for one.
func ClientTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pool, err := LoadCAs(caFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("a client certificate needs both its certificate and its key file")
	}
	if certFile != "" {
		c, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	return cfg, nil
}

// certReloader serves a certificate pair from files, reading them again
// when their size, modification time or inode change. A pair that does not
// load (half-written during a renewal) is logged once and the previous
// one kept.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger

	mu     sync.Mutex
	stamps [2]stamp
	cert   *tls.Certificate
}

func (r *certReloader) stampsNow() ([2]stamp, error) {
	var s [2]stamp
	for i, f := range []string{r.certFile, r.keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return s, fmt.Errorf("TLS certificate: %w", err)
		}
		s[i] = stampOf(fi)
	}
	return s, nil
}

func (r *certReloader) reload() error {
	s, err := r.stampsNow()
	if err != nil {
		return err
	}
	if r.cert != nil && s == r.stamps {
		return nil
	}
	c, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	r.stamps = s
	if err != nil {
		return fmt.Errorf("TLS certificate %s, key %s: %w", r.certFile, r.keyFile, err)
	}
	if r.cert != nil {
		r.log.Info("TLS certificate read again", "cert", r.certFile)
	}
	r.cert = &c
	return nil
}

func (r *certReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.stamps
	if err := r.reload(); err != nil && r.stamps != old {
		r.log.Error("TLS certificate changed but cannot be used; serving the one read before", "err", err)
	}
	return r.cert, nil
}
