package agent

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/ssi-cluster/ssi/internal/pki"
	"github.com/ssi-cluster/ssi/internal/transport"
)

// Node certificates are short-lived (cert_ttl, 72 h by default) and the
// agent renews its own at half its life, without the operator: a voter
// signs its own (it holds the CA key), any other member asks the master.
// A renewal keeps the node's key. A node away longer than its
// certificate's life cannot renew (no peer accepts an expired
// certificate): it joins again with a token, keeping its node ID.

// renewLoop renews this node's certificate when it is due, retrying every
// 10 s while it cannot.
func (a *Agent) renewLoop(ctx context.Context) {
	for {
		wait := time.Minute
		from, until, err := pki.CertLife(a.nodeCertPEM())
		if err == nil {
			at := pki.RenewAt(from, until, time.Duration(a.cfg.CertTTL))
			if !time.Now().Before(at) {
				if err := a.renew(ctx); err != nil {
					a.log.Warn("renewing the node certificate failed; will retry", "expires", until, "err", err)
					wait = 10 * time.Second
				}
			} else if d := time.Until(at); d < wait {
				wait = max(d, time.Second)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// nodeCertPEM returns the node certificate in use.
func (a *Agent) nodeCertPEM() []byte {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.bundle.NodeCertPEM
}

// renew gets a new certificate for this node and puts it in use.
func (a *Agent) renew(ctx context.Context) error {
	id := a.Identity()
	csr, err := a.bundle.CSR(id.ID)
	if err != nil {
		return err
	}
	var cert []byte
	if a.bundle.HoldsCAKey() {
		cert, err = a.bundle.CA.SignVoterCSR(csr, id.ID, []net.IP{net.ParseIP(a.advertise)}, time.Duration(a.cfg.CertTTL))
	} else {
		cert, err = a.renewAtMaster(ctx, csr)
	}
	if err != nil {
		return err
	}
	a.mu.Lock()
	err = a.bundle.SaveNodeCert(a.cfg.StateDir, cert)
	a.mu.Unlock()
	if err != nil {
		return err
	}
	if err := a.creds.SetCert(cert, a.bundle.NodeKeyPEM); err != nil {
		return err
	}
	_, until, _ := pki.CertLife(cert)
	a.log.Info("renewed the node certificate", "valid_until", until.UTC().Format(time.RFC3339))
	return nil
}

func (a *Agent) renewAtMaster(ctx context.Context, csr []byte) ([]byte, error) {
	rec, id := a.leaderRec()
	if rec == nil {
		return nil, fmt.Errorf("no master known (%q)", id)
	}
	c, err := a.pool.Client(rec.RPCAddr(), transport.Control)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := c.Renew(cctx, &transport.RenewRequest{CSR: csr})
	if err != nil {
		return nil, err
	}
	return resp.CertPEM, nil
}

// renewExpired deals, at start, with a certificate that expired while the
// agent was not running: a voter signs itself a new one; any other node
// joins again with a token if it has one, and otherwise cannot start.
func (a *Agent) renewExpired(ctx context.Context, id *Identity, b *pki.Bundle) (*pki.Bundle, error) {
	_, until, err := pki.CertLife(b.NodeCertPEM)
	if err != nil {
		return nil, err
	}
	if time.Now().Before(until) {
		return b, nil
	}
	if b.HoldsCAKey() {
		csr, err := b.CSR(id.ID)
		if err != nil {
			return nil, err
		}
		var ips []net.IP
		if ip := net.ParseIP(a.advertise); ip != nil {
			ips = append(ips, ip)
		}
		cert, err := b.CA.SignVoterCSR(csr, id.ID, ips, time.Duration(a.cfg.CertTTL))
		if err != nil {
			return nil, err
		}
		if err := b.SaveNodeCert(a.cfg.StateDir, cert); err != nil {
			return nil, err
		}
		a.log.Info("this node's certificate had expired; the voter signed itself a new one", "expired", until)
		return b, nil
	}
	a.log.Warn("this node's certificate expired while the agent was stopped; joining again with a token", "expired", until)
	if _, err := a.joinCluster(ctx, id, b); err != nil {
		return nil, fmt.Errorf("this node's certificate expired at %s (it was away longer than its lifetime): %w",
			until.UTC().Format(time.RFC3339), err)
	}
	nb, err := pki.LoadBundle(a.cfg.StateDir)
	if err != nil {
		return nil, err
	}
	nid, err := LoadIdentity(a.cfg.StateDir)
	if err != nil {
		return nil, err
	}
	*id = *nid
	return nb, nil
}
