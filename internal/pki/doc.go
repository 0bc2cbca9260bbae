// Package pki holds the cluster's certificates, keys and join tokens, and
// builds the TLS configurations the agents use to talk to each other.
//
// # Trust model
//
// Every cluster has one certificate authority (CA), created by `ssi init`: an
// ECDSA P-256 key and a self-signed certificate valid for ten years, with the
// common name "ssi cluster CA <name>". Its certificate is the only trust
// anchor: agents trust no system roots, and a certificate is a cluster
// member's certificate exactly when the CA signed it.
//
// Each node has its own ECDSA P-256 key and a node certificate signed by the
// CA, valid for a short time (DefaultCertTTL, 72 h; the agent renews it at
// half its life). The certificate's common name is the node ID, it carries
// the DNS names {nodeID, [ServerName]} and the node's IP addresses, and it
// is good for both TLS server and client authentication. Agents talk gRPC
// over mutual TLS 1.3 with [Creds]: the current certificate is read at each
// handshake (so a renewal needs no restart), a client checks that the
// server's certificate chains to the CA and names [ServerName], a server
// checks that the client's certificate chains to the CA and reads the
// client's node ID from it with [PeerNodeID], and both refuse a peer whose
// node ID was removed from the cluster ([Creds.SetRevoked]); the connections
// a removed node holds are closed ([Creds.CloseConns]). The CA signs nothing
// but node certificates, so any certificate it signed is a member's.
//
// # Joining
//
// A node that joins has no certificate yet. It is given a join token
//
//	ssi1.<secret: 32 lowercase hex characters>.<CA hash: 64 lowercase hex characters>
//
// where the CA hash is the SHA-256 of the CA certificate's DER bytes (the same
// idea as kubeadm's discovery-token-ca-cert-hash). The joiner connects with
// [JoinClientTLS], which accepts the server only if the chain it presents
// ends in a certificate with that hash and the server's certificate verifies
// against it, so a joiner cannot be talked into joining an impostor. Over that
// connection it sends the token's secret and a certificate signing request
// made with [CreateCSR]. The cluster keeps tokens hashed ([Token.Hash]); the
// master checks the secret's hash against them and answers with a
// certificate from [CA.SignCSR]. The private key never leaves the joiner.
// The join listener accepts clients without certificates ([Creds.ServerTLS]
// with allowUnauthenticated); the RPC layer then demands a verified client
// certificate on every method except Join.
//
// # Only voters hold the CA key
//
// The CA key is kept by voters only: the first node and nodes admitted with
// a voter token. The master, which signs every certificate, is always a
// voter. A member that is not a voter keeps the CA certificate alone
// ([CA.CertOnly]), so a rogue or compromised member cannot issue
// certificates; see docs/security.md.
//
// # State directory
//
// [Bundle.Save] writes, and [LoadBundle] reads, these files:
//
//	ca.pem        CA certificate (PEM), mode 0644
//	ca-key.pem    CA private key (PEM, SEC 1 "EC PRIVATE KEY"), mode 0600: voters only
//	node.pem      this node's certificate (PEM), mode 0644
//	node-key.pem  this node's private key (PEM, SEC 1), mode 0600
//	gossip.key    32-byte AES-256 key for memberlist gossip, one line of hex, mode 0600
//	join-token    the first join token (written by `ssi init` alone, SaveToken), mode 0600
//
// Each file is replaced atomically (written to a temporary file in the same
// directory, synced, then renamed), so a crash leaves either the old or the
// new version of a file, never a torn one.
//
// Only the standard library's crypto packages are used.
package pki
