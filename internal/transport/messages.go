package transport

import "github.com/ssi-cluster/ssi/internal/api"

// JoinRequest is sent by a node that has the join token but no certificate.
type JoinRequest struct {
	Secret     []byte `json:"secret"` // the token's secret (16 bytes)
	NodeID     string `json:"node_id"`
	Name       string `json:"name"`
	Addr       string `json:"addr"` // advertised IP
	GossipPort int    `json:"gossip_port"`
	RPCPort    int    `json:"rpc_port"`
	RaftPort   int    `json:"raft_port"`
	CSR        []byte `json:"csr"` // DER certificate request for NodeID
}

// JoinResponse carries everything a new member needs. CAKeyPEM is set
// only for a node admitted with a voter token.
type JoinResponse struct {
	Cluster   string   `json:"cluster"`
	Number    int      `json:"number"`
	CertPEM   []byte   `json:"cert_pem"`
	CACertPEM []byte   `json:"ca_cert_pem"`
	CAKeyPEM  []byte   `json:"ca_key_pem,omitempty"`
	Voter     bool     `json:"voter,omitempty"`
	GossipKey []byte   `json:"gossip_key"`
	Peers     []string `json:"peers"` // gossip addresses (ip:port) of members
}

// AdmitRequest relays a join that reached a member which is not the master
// to the master, which alone admits nodes. Source is the joiner's address
// as the relaying member saw it.
type AdmitRequest struct {
	Join   JoinRequest `json:"join"`
	Source string      `json:"source"`
}

// RenewRequest asks the master for a new certificate for the caller's own
// node ID (taken from the caller's certificate, never from the request)
// and the public key of CSR.
type RenewRequest struct {
	CSR []byte `json:"csr"`
}

// RenewResponse is the renewed certificate.
type RenewResponse struct {
	CertPEM []byte `json:"cert_pem"`
}

// ForwardRequest carries a command for the replicated state to the leader.
type ForwardRequest struct {
	Command []byte `json:"command"`
}

// ForwardResponse is the leader's answer: the command's result, or an error.
type ForwardResponse struct {
	Result []byte `json:"result,omitempty"`
	Error  string `json:"error,omitempty"`
}

// PingRequest asks a peer who it is.
type PingRequest struct{}

// PingResponse names the peer.
type PingResponse struct {
	NodeID string `json:"node_id"`
	Number int    `json:"number"`
}

// ProcsRequest asks a node for its process table, or for one process.
type ProcsRequest struct {
	Pid int `json:"pid,omitempty"` // 0: every process
	// CPID asks for the process with this cluster pid among those run
	// here for deputies (Pid is then 0); with Surrogate the node answers
	// for the process's origin, which is down, by asking every node.
	CPID      int64 `json:"cpid,omitempty"`
	Surrogate bool  `json:"surrogate,omitempty"`
	// Home asks for the processes run here for deputies of node Home (an
	// origin taking its tracking back after a restart).
	Home int `json:"home,omitempty"`
}

// ProcsResponse is a node's process table.
type ProcsResponse struct {
	Procs []api.Proc `json:"procs"`
}

// SignalRequest asks a node to signal one of its processes (or, with Group,
// a process group) on behalf of a user; the node checks ownership.
type SignalRequest struct {
	Pid    int  `json:"pid"`
	Group  bool `json:"group,omitempty"`
	Signal int  `json:"signal"`
	UID    int  `json:"uid"` // the caller, as its own node saw it (SO_PEERCRED)
	From   int  `json:"from"`
	// CPID names the process by cluster pid among those run here for
	// deputies (Pid is then 0); with Surrogate the node answers for the
	// process's origin, which is down.
	CPID      int64 `json:"cpid,omitempty"`
	Surrogate bool  `json:"surrogate,omitempty"`
}

// SignalResponse is empty: success.
type SignalResponse struct{}
