package pki

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
)

// ServerName is the DNS SAN every node certificate carries; clients verify
// against it.
const ServerName = "ssi-node"

// ServerTLS returns the TLS configuration for an agent listener. The server
// presents the chain [node certificate, CA certificate]; the CA is included
// so that a joiner can pin it against its token.
//
// With allowUnauthenticated false a client must present a certificate signed
// by ca. With it true (the join port) a client may present none, but one it
// does present must still verify; the RPC layer then demands a verified
// certificate ([PeerNodeID]) on every method except Join.
func ServerTLS(certPEM, keyPEM []byte, ca *x509.CertPool, allowUnauthenticated bool) (*tls.Config, error) {
	cert, err := nodeKeyPair(certPEM, keyPEM, ca, x509.ExtKeyUsageServerAuth)
	if err != nil {
		return nil, err
	}
	clientAuth := tls.RequireAndVerifyClientCert
	if allowUnauthenticated {
		clientAuth = tls.VerifyClientCertIfGiven
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientCAs:    ca,
		ClientAuth:   clientAuth,
		MinVersion:   tls.VersionTLS13,
	}, nil
}

// ClientTLS returns a mutual-TLS client configuration: it presents the node
// certificate and accepts only servers whose certificate is signed by ca and
// names ServerName.
func ClientTLS(certPEM, keyPEM []byte, ca *x509.CertPool) (*tls.Config, error) {
	cert, err := nodeKeyPair(certPEM, keyPEM, ca, x509.ExtKeyUsageClientAuth)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		RootCAs:      ca,
		ServerName:   ServerName,
		MinVersion:   tls.VersionTLS13,
	}, nil
}

// JoinClientTLS returns the TLS configuration for a node that has no
// certificate yet and knows the cluster only by the CA hash in its join
// token. It accepts a server only if the last certificate of the chain the
// server presents has SHA-256 caSum and the server's certificate verifies
// against that CA for ServerName.
//
// The standard verification cannot do this, as the joiner has no CA pool
// until it has seen the server's chain. So InsecureSkipVerify turns the
// standard verification off and VerifyConnection does all of it instead.
// VerifyConnection (unlike VerifyPeerCertificate) also runs on resumed
// sessions, so no connection escapes the check.
func JoinClientTLS(caSum [32]byte) *tls.Config {
	return &tls.Config{
		ServerName:         ServerName,
		MinVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true, // verified by VerifyConnection below
		VerifyConnection: func(cs tls.ConnectionState) error {
			return verifyPinned(cs.PeerCertificates, caSum)
		},
	}
}

// verifyPinned checks that chain ends in the CA with hash caSum and that
// chain[0] verifies against it for ServerName.
func verifyPinned(chain []*x509.Certificate, caSum [32]byte) error {
	if len(chain) == 0 {
		return errors.New("server presented no certificate")
	}
	root := chain[len(chain)-1]
	if got := sha256.Sum256(root.Raw); got != caSum {
		return fmt.Errorf("server's CA does not match the join token (want sha256:%x, got sha256:%x)", caSum, got)
	}
	roots := x509.NewCertPool()
	roots.AddCert(root)
	inter := x509.NewCertPool()
	for _, c := range chain[1 : len(chain)-1] {
		inter.AddCert(c)
	}
	_, err := chain[0].Verify(x509.VerifyOptions{
		DNSName:       ServerName,
		Roots:         roots,
		Intermediates: inter,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return fmt.Errorf("server certificate is not valid for the join token's CA: %w", err)
	}
	return nil
}

// PeerNodeID returns the node ID (common name) of the peer's verified
// certificate, or "" and false if the peer presented no verified
// certificate. A connection made with JoinClientTLS has no verified chains
// in this sense, so PeerNodeID reports false on it.
func PeerNodeID(cs tls.ConnectionState) (string, bool) {
	if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return "", false
	}
	id := cs.VerifiedChains[0][0].Subject.CommonName
	return id, id != ""
}

// PeerIsVoter reports whether the peer's verified certificate is a
// voter's (it carries VoterOU).
func PeerIsVoter(cs tls.ConnectionState) bool {
	if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return false
	}
	for _, ou := range cs.VerifiedChains[0][0].Subject.OrganizationalUnit {
		if ou == VoterOU {
			return true
		}
	}
	return false
}

// nodeKeyPair loads a node certificate and key, checks that the certificate
// is signed by ca and good for usage, and returns it with the chain up to
// and including the CA certificate.
func nodeKeyPair(certPEM, keyPEM []byte, ca *x509.CertPool, usage x509.ExtKeyUsage) (tls.Certificate, error) {
	if ca == nil {
		return tls.Certificate{}, errors.New("tls: no CA pool")
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("node certificate: %w", err)
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return tls.Certificate{}, fmt.Errorf("node certificate: %w", err)
		}
	}
	inter := x509.NewCertPool()
	for _, der := range cert.Certificate[1:] {
		if c, err := x509.ParseCertificate(der); err == nil {
			inter.AddCert(c)
		}
	}
	chains, err := leaf.Verify(x509.VerifyOptions{Roots: ca, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{usage}})
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("node certificate is not valid for the cluster CA: %w", err)
	}
	cert.Certificate = cert.Certificate[:0:0]
	for _, c := range chains[0] {
		cert.Certificate = append(cert.Certificate, c.Raw)
	}
	cert.Leaf = leaf
	return cert, nil
}
