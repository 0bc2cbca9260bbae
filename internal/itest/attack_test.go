package itest

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ssi-cluster/ssi/internal/api"
	"github.com/ssi-cluster/ssi/internal/checkpoint"
	"github.com/ssi-cluster/ssi/internal/harness"
	"github.com/ssi-cluster/ssi/internal/migrate"
	"github.com/ssi-cluster/ssi/internal/pki"
	"github.com/ssi-cluster/ssi/internal/rexec"
	"github.com/ssi-cluster/ssi/internal/state"
	"github.com/ssi-cluster/ssi/internal/transport"
	"github.com/ssi-cluster/ssi/internal/vproc"
)

// Attacks on the claims of docs/security.md that got through. Each test
// here fails while the hole it shows is open. They run in loopback mode
// (the test process calls the agents' RPC ports itself).

// joinAs joins through addr with a token's secret under node ID id and name
// name, with a fresh key, and returns the master's answer.
func joinAs(t *testing.T, ctx context.Context, addr, token, id, name, ip string) (*transport.JoinResponse, error) {
	t.Helper()
	tok, err := pki.ParseToken(token)
	if err != nil {
		t.Fatal(err)
	}
	key, err := pki.NewNodeKey()
	if err != nil {
		t.Fatal(err)
	}
	csr, err := pki.CreateCSR(key, id)
	if err != nil {
		t.Fatal(err)
	}
	jc, err := transport.DialJoin(addr, pki.JoinClientTLS(tok.CASum))
	if err != nil {
		t.Fatal(err)
	}
	defer jc.Close()
	// A token just made may not have reached the node addr yet.
	deadline := time.Now().Add(5 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		resp, err := jc.Join(cctx, &transport.JoinRequest{Secret: tok.Secret[:], NodeID: id, Name: name,
			Addr: ip, GossipPort: 17946, RPCPort: 17947, RaftPort: 17948, CSR: csr})
		cancel()
		if err == nil || !strings.Contains(err.Error(), "not one of this cluster's") || time.Now().After(deadline) {
			return resp, err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestAttackJoinUnderExistingID: the holder of a plain member token joins
// under the node ID of an existing voter (node IDs are public: `ssi nodes
// -o json` shows them to any local user, and every agent's TLS certificate
// names its own). docs/security.md says such a holder joins "as a member"
// and "cannot get the CA key ... or get a certificate for another node ID".
//
// The master's register treats a known ID as a re-join and refreshes that
// node's record; the node stays a voter, so the join response carries the
// CA key, a certificate for the voter's ID, and the voter's record now
// points at the attacker's address.
func TestAttackJoinUnderExistingID(t *testing.T) {
	c, ctx := clusterWith(t, harness.Options{Nodes: 2, Members: true})
	cl, err := c.Client(1)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cl.CreateToken(ctx, api.TokenCreate{TTL: "1h", MaxUses: 2, Description: "stolen member token"})
	if err != nil {
		t.Fatal(err)
	}
	nodes, err := c.ListNodes(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	var voter, member api.Node
	for _, n := range nodes {
		if n.Voter {
			voter = n
		} else {
			member = n
		}
	}
	if voter.ID == "" || member.ID == "" {
		t.Fatalf("want a voter and a member: %+v", nodes)
	}
	// Through the member (which relays to the master with Admit).
	addr := net.JoinHostPort(c.Nodes[member.Number-1].Addr, "7947")

	// The member's ID first: the voter's hijack below moves the master's
	// address to the attacker's, after which no relayed join reaches it.
	t.Run("member ID", func(t *testing.T) {
		resp, err := joinAs(t, ctx, addr, tok.Secret, member.ID, "evil2", "127.0.0.98")
		if err != nil {
			t.Logf("refused: %v (the claim holds)", err)
			return
		}
		if resp.Number == member.Number {
			t.Errorf("a join under member %d's ID got a certificate for that ID (node %d)", member.Number, resp.Number)
		}
	})
	t.Run("voter ID with a member token", func(t *testing.T) {
		resp, err := joinAs(t, ctx, addr, tok.Secret, voter.ID, "evil", "127.0.0.99")
		if err != nil {
			t.Logf("refused: %v (the claim holds)", err)
			return
		}
		if len(resp.CAKeyPEM) > 0 {
			t.Errorf("a member token joined under voter %d's ID got the CA key (%d bytes of PEM), voter=%v", voter.Number, len(resp.CAKeyPEM), resp.Voter)
		}
		if resp.Number == voter.Number {
			t.Errorf("the join was admitted as node %d (the voter) with a certificate for its ID", resp.Number)
		}
		after, _ := c.ListNodes(ctx, 1)
		for _, n := range after {
			if n.ID == voter.ID && (n.Name != voter.Name || n.Address != voter.Address) {
				t.Errorf("the voter's record was rewritten by the join: %+v, was %+v", n, voter)
			}
		}
	})
}

// gossipPacket builds a memberlist UDP packet: one message of type typ
// (memberlist's messageType) with body encoded as memberlist does, sealed
// with key as memberlist's encryption version 1 (AES-GCM, no label).
func gossipPacket(t *testing.T, key []byte, typ byte, body any) []byte {
	t.Helper()
	var msg bytes.Buffer
	msg.WriteByte(typ)
	if err := codec.NewEncoder(&msg, &codec.MsgpackHandle{}).Encode(body); err != nil {
		t.Fatal(err)
	}
	blk, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	gcm, err := cipher.NewGCM(blk)
	if err != nil {
		t.Fatal(err)
	}
	nonce := make([]byte, 12)
	rand.Read(nonce)
	out := append([]byte{1}, nonce...)
	return gcm.Seal(out, nonce, msg.Bytes(), nil)
}

// TestAttackGossipForgedLeave: a rogue member holds the gossip key, and
// memberlist does not authenticate which node a message speaks for. One
// forged "dead" message about another node, with an incarnation above the
// victim's, sent by UDP to the master's gossip port, makes the master's
// memberlist declare the victim dead and the master commit "down ...
// failure detected" for it within ~100 ms (seen: the victim then fences,
// "excluded by the cluster"), though docs/security.md says a rogue node
// cannot "commit anything but its own leave". Sent again and again, such
// packets keep any node, voters included, out of the cluster.
func TestAttackGossipForgedLeave(t *testing.T) {
	c, ctx := clusterWith(t, harness.Options{Nodes: 3, Members: true})
	rogueState := c.Nodes[2].StateDir // node 3 plays the rogue member: its gossip key
	b, err := pki.LoadBundle(rogueState)
	if err != nil {
		t.Fatal(err)
	}
	nodes, err := c.ListNodes(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	var victim api.Node
	for _, n := range nodes {
		if n.Number == 2 {
			victim = n
		}
	}
	masterNum, err := masterOf(ctx, c, 1)
	if err != nil {
		t.Fatal(err)
	}
	ua, err := net.ResolveUDPAddr("udp", net.JoinHostPort(c.Nodes[masterNum-1].Addr, "7946"))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialUDP("udp", nil, ua)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const deadMsg = 5 // memberlist's messageType
	type dead struct {
		Incarnation uint32
		Node        string
		From        string
	}
	inc := uint32(1 << 20)
	excluded := ""
	for start := time.Now(); time.Since(start) < 10*time.Second && excluded == ""; {
		for i := 0; i < 5; i++ {
			inc++
			conn.Write(gossipPacket(t, b.GossipKey, deadMsg, dead{Incarnation: inc, Node: victim.ID, From: victim.ID}))
		}
		time.Sleep(20 * time.Millisecond)
		ns, err := c.ListNodes(ctx, masterNum)
		if err != nil {
			continue
		}
		for _, n := range ns {
			if n.Number == victim.Number && n.State != api.StateUp {
				excluded = n.State
			}
		}
	}
	if excluded != "" {
		t.Errorf("forged gossip from a member made the master commit node %d (%s) %s", victim.Number, victim.Name, excluded)
	}
}

// helperBigHeaders opens H_COUNT connections to H_SOCKET as nobody and on
// each sends the start of a GET with nearly 1 MiB of header lines, never
// the blank line that ends them; it holds them 3 s (inside the agent's 5 s
// header timeout) and returns.
func helperBigHeaders() (helperResult, error) {
	var res helperResult
	n := int(envInt("H_COUNT"))
	if err := becomeNobody(uint64(n+256), 0); err != nil {
		return res, err
	}
	var head bytes.Buffer
	if os.Getenv("H_BODY") != "" {
		// A JSON body of 1 MiB (the most accepted) of which all but the
		// last byte is sent.
		fmt.Fprintf(&head, "POST /v1/signal HTTP/1.1\r\nHost: ssi\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", 1<<20)
		head.WriteString(`{"x":"`)
		head.WriteString(strings.Repeat("a", 1<<20-7))
	} else {
		head.WriteString("GET /v1/self HTTP/1.1\r\nHost: ssi\r\n")
		val := strings.Repeat("a", 4000)
		for i := 0; head.Len() < 1000*1000; i++ {
			fmt.Fprintf(&head, "X-%d: %s\r\n", i, val)
		}
	}
	// All at once, as an attacker would: the agent closes each refused
	// connection after Go's half-second wait for the client to read its
	// answer, and one after the other that alone took 55 s.
	var conns []net.Conn
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("unix", os.Getenv("H_SOCKET"))
			if err != nil {
				mu.Lock()
				res.Other++
				res.OtherErr = err.Error()
				mu.Unlock()
				return
			}
			c.SetWriteDeadline(time.Now().Add(2 * time.Second))
			w, err := c.Write(head.Bytes())
			mu.Lock()
			defer mu.Unlock()
			res.Written += int64(w)
			if err != nil {
				res.Other++
				res.OtherErr = err.Error()
				c.Close()
				return
			}
			res.OK++
			conns = append(conns, c)
		}()
	}
	wg.Wait()
	time.Sleep(3 * time.Second)
	for _, c := range conns {
		c.Close()
	}
	return res, nil
}

// TestAttackHeaderMemory: the local API's guard reads no body before it
// has authorized a request, but the HTTP server reads headers up to Go's
// default MaxHeaderBytes (1 MiB) on every connection, and a user who is
// not root may hold max_user_conns (1024) of them for the 5 s header
// timeout, again and again. docs/security.md ("Bounded bodies", "the
// server's own 4 KiB header buffer aside") promises the agent's memory
// does not follow what a user sends. Here uid 65534 with 100 connections
// (well under its cap) made the agent hold over 100 MiB; the same
// with JSON bodies of 1 MiB (the bound) sent but for their last byte, each
// held in the agent's memory for the 10 s a body may take.
func TestAttackHeaderMemory(t *testing.T) {
	for _, what := range []string{"headers", "JSON bodies"} {
		t.Run(what, func(t *testing.T) {
			c, _ := startCluster(t, 1)
			openToOthers(t, c)
			pid, err := c.AgentPID(1)
			if err != nil {
				t.Fatal(err)
			}
			before, err := vmRSS(pid)
			if err != nil {
				t.Fatal(err)
			}
			env := []string{"H_SOCKET=" + c.Nodes[0].Socket, "H_COUNT=100"}
			if what == "JSON bodies" {
				env = append(env, "H_BODY=1")
			}
			stop := rssWatch(pid)
			res := runHelperCmd(t, helper(c, 1, "big-headers", env...))
			peak := stop()
			t.Logf("uid %d: %d connections each with ~1 MB of unfinished %s (%d MB sent, %d failed: %s); agent VmRSS %d MiB before, %d MiB peak",
				nobodyUID, res.OK, what, res.Written/1e6, res.Other, res.OtherErr, before/mib, peak/mib)
			if peak-before > 50*mib {
				t.Errorf("agent VmRSS grew by %d MiB from a non-root user's unfinished %s", (peak-before)/mib, what)
			}
		})
	}
}

// TestAttackAdmitSkipsJoinLimits: Admit, the call by which a member relays
// a join to the master, is open to any member and skips everything that
// guards Join: the per-source and global limits of failed joins, the
// token pre-check before anything is read (each wrong secret costs a raft
// commit of a failing register, written and replicated by every voter),
// and the source in the master's log is whatever the caller says. A rogue
// member thus tries wrong secrets at whatever rate the master's raft
// takes; docs/security.md: "failed joins are slowed per source address (5
// at once, then waits of 1 s doubling to 30 s) and to 50 a second across
// all addresses".
func TestAttackAdmitSkipsJoinLimits(t *testing.T) {
	c, ctx := clusterWith(t, harness.Options{Nodes: 2, Members: true})
	b, err := pki.LoadBundle(c.Nodes[1].StateDir) // node 2: a member, played by the attacker
	if err != nil {
		t.Fatal(err)
	}
	mc := masterClientWith(t, ctx, c, b)
	key, _ := pki.NewNodeKey()
	csr, _ := pki.CreateCSR(key, "attacker-node-0001")
	const tries = 200
	codesSeen := map[codes.Code]int{}
	start := time.Now()
	for i := 0; i < tries; i++ {
		secret := make([]byte, 16)
		rand.Read(secret)
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := mc.Admit(cctx, &transport.AdmitRequest{Source: "203.0.113.7", Join: transport.JoinRequest{
			Secret: secret, NodeID: "attacker-node-0001", Name: "attacker", Addr: "127.0.0.97",
			GossipPort: 17946, RPCPort: 17947, RaftPort: 17948, CSR: csr}})
		cancel()
		codesSeen[status.Code(err)]++
	}
	elapsed := time.Since(start)
	t.Logf("%d Admit calls with wrong secrets from member %s in %v: %v", tries, c.Nodes[1].Name, elapsed.Round(time.Millisecond), codesSeen)
	if codesSeen[codes.ResourceExhausted] == 0 {
		t.Errorf("%d failed joins by Admit (%.0f a second) were never slowed: %v", tries, tries/elapsed.Seconds(), codesSeen)
	}
}

// TestAttackRaftFromMember: the raft port wants a certificate of the
// cluster CA, and a member has one: nothing checks that the peer is one
// of raft's servers, or the leader it says it is. A rogue member speaks
// raft to the voter itself: an AppendEntries with a higher term and one
// log entry of its choice (here: a voter token whose secret it knows),
// committed at once (LeaderCommitIndex). The voter steps down, applies the
// entry, wins the next election and keeps it; the member then joins with
// its forged voter token and gets the CA key. docs/security.md: a rogue
// node cannot "make tokens ... or commit anything but its own leave".
func TestAttackRaftFromMember(t *testing.T) {
	c, ctx := clusterWith(t, harness.Options{Nodes: 2, Members: true})
	b, err := pki.LoadBundle(c.Nodes[1].StateDir) // node 2, a member, played by the attacker
	if err != nil {
		t.Fatal(err)
	}
	srv, err := b.ServerTLS(false)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := b.ClientTLS()
	if err != nil {
		t.Fatal(err)
	}
	layer, err := transport.NewRaftLayer("127.0.0.1:0", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}, srv, cli, nil)
	if err != nil {
		t.Fatal(err)
	}
	trans := raft.NewNetworkTransport(layer, 2, 10*time.Second, io.Discard)
	defer trans.Close()

	nodes, err := c.ListNodes(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	var voter api.Node
	for _, n := range nodes {
		if n.Voter {
			voter = n
		}
	}
	target := raft.ServerAddress(net.JoinHostPort(c.Nodes[voter.Number-1].Addr, "7948"))
	hdr := raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("rogue"), Addr: []byte("127.0.0.1:1")}

	// A probe with term 0 is refused, saying the term and the last index.
	var probe raft.AppendEntriesResponse
	if err := trans.AppendEntries(raft.ServerID(voter.ID), target, &raft.AppendEntriesRequest{RPCHeader: hdr}, &probe); err != nil {
		t.Logf("the voter's raft port refused a member's certificate (the claim holds): %v", err)
		return
	}
	t.Logf("voter %d: term %d, last log %d", voter.Number, probe.Term, probe.LastLog)

	var secret [16]byte
	rand.Read(secret[:])
	forged := pki.Token{Secret: secret, CASum: sha256.Sum256(caDER(t, b.CA.CertPEM))}
	h := forged.Hash()
	cmd, err := (&state.Command{Op: state.OpTokenCreate, Time: time.Now().UTC(),
		Token: &state.TokenRec{ID: forged.ID(), Hash: hex.EncodeToString(h[:]), Voter: true, Description: "forged over raft"}}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	term, idx := probe.Term+1, probe.LastLog+1
	var resp raft.AppendEntriesResponse
	err = trans.AppendEntries(raft.ServerID(voter.ID), target, &raft.AppendEntriesRequest{RPCHeader: hdr, Term: term,
		Entries:           []*raft.Log{{Index: idx, Term: term, Type: raft.LogCommand, Data: cmd, AppendedAt: time.Now()}},
		LeaderCommitIndex: idx}, &resp)
	t.Logf("forged AppendEntries (term %d, index %d): success %v, term %d, last %d, err %v", term, idx, resp.Success, resp.Term, resp.LastLog, err)
	if err == nil && resp.Success {
		t.Errorf("voter %d accepted a log entry from member %s over raft", voter.Number, c.Nodes[1].Name)
	}

	// Wait for a master again, then use the token.
	c.WaitFor(ctx, "a master", func() (bool, error) {
		ci, err := c.ClusterInfo(ctx, 1)
		return err == nil && ci.Master != 0, nil
	})
	addr := net.JoinHostPort(c.Nodes[voter.Number-1].Addr, "7947")
	jr, err := joinAs(t, ctx, addr, forged.String(), "forged-voter-0001", "forged", "127.0.0.95")
	if err == nil {
		t.Errorf("joined with a token forged over raft: node %d, voter %v, CA key %d bytes", jr.Number, jr.Voter, len(jr.CAKeyPEM))
	} else {
		t.Logf("join with the forged token: %v", err)
	}
}

// caDER is the DER of a PEM certificate.
func caDER(t *testing.T, p []byte) []byte {
	t.Helper()
	blk, _ := pem.Decode(p)
	if blk == nil {
		t.Fatal("no PEM certificate")
	}
	return blk.Bytes
}

// TestAttackRemovedNodeGetsNewGossipKey: after `ssi node remove`, the
// master commits the new gossip key (reconcile: KeyStale) before it takes
// the removed node out of raft (RemoveServer comes after), and its raft
// replication to that node runs over the connection it opened before the
// removal, which nothing closes (Creds.CloseConns closes accepted
// connections only). So the removed node's raft log receives the very key
// that was meant to lock it out of the gossip. The agent here is honest and
// stops when it applies its removal; a rogue one would just keep reading.
// docs/security.md: "the master changes the gossip key ... with no way back".
func TestAttackRemovedNodeGetsNewGossipKey(t *testing.T) {
	c, ctx := clusterWith(t, harness.Options{Nodes: 2, Members: true})
	cl, err := c.Client(1)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cl.CreateToken(ctx, api.TokenCreate{TTL: "1h", MaxUses: 1})
	if err != nil {
		t.Fatal(err)
	}
	r := startRogue(t, c, 2, "evil", tok.Secret)
	self := r.member(t, ctx)
	time.Sleep(3 * time.Second) // a raft non-voter by now
	if _, err := cl.RemoveNode(ctx, self.Number); err != nil {
		t.Fatalf("node remove: %v", err)
	}
	select {
	case <-r.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the removed agent did not stop")
	}
	old := bundleKeyFile(t, r.state)
	var newKey string
	err = c.WaitFor(ctx, "the new gossip key", func() (bool, error) {
		k, err := os.ReadFile(filepath.Join(c.Nodes[0].StateDir, pki.GossipKeyFile))
		if err != nil {
			return false, err
		}
		newKey = strings.TrimSpace(string(k))
		return !bytes.Equal(k, old), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	logs, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(r.state, "raft", "raft.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	first, _ := logs.FirstIndex()
	last, _ := logs.LastIndex()
	for i := first; i <= last && i > 0; i++ {
		var l raft.Log
		if logs.GetLog(i, &l) != nil || l.Type != raft.LogCommand {
			continue
		}
		if cmd, err := state.DecodeCommand(l.Data); err == nil && cmd.Op == state.OpGossipKey {
			if cmd.GossipKey == newKey {
				t.Errorf("the removed node's raft log (entry %d of %d..%d) holds the gossip key that replaced the one it had", i, first, last)
			} else {
				t.Logf("entry %d: a gossip key other than the one in use", i)
			}
		}
	}
	t.Logf("the removed node's raft log: entries %d..%d", first, last)
}

// TestAttackUnauthenticatedRPCMemory: the RPC port takes connections
// without a certificate (for Join), and gRPC reads a request whole, up to
// MaxMessage (4 MiB), before the interceptor asks for a certificate and
// before Join's rate limits are consulted; its flow-control windows (16 MiB
// a stream, 64 MiB a connection) let a client push that much before the
// server reads anything. A network attacker without credentials opens a
// few TLS connections and on each starts streams of a call whose 4 MiB
// message never ends: the agent holds what it was sent. docs/security.md:
// a network attacker can "connect to the agents' ports, send garbage" and
// "cannot call any RPC but Join"; failed joins are slowed per source.
func TestAttackUnauthenticatedRPCMemory(t *testing.T) {
	c, _ := clusterWith(t, harness.Options{Nodes: 1})
	pid, err := c.AgentPID(1)
	if err != nil {
		t.Fatal(err)
	}
	before, err := vmRSS(pid)
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort(c.Nodes[0].Addr, "7947")
	const conns, streams = 8, 15
	chunk := make([]byte, 16<<10)
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	stop := rssWatch(pid)
	sent := 0
conns:
	for i := 0; i < conns; i++ {
		tc, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
		if err == nil {
			// TLS 1.3: a refusal by the server arrives with the first read.
			tc.SetReadDeadline(time.Now().Add(time.Second))
			_, err = tc.Read(make([]byte, 0))
			tc.SetReadDeadline(time.Time{})
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				err = nil
			}
		}
		if err != nil {
			t.Logf("connection %d without a certificate refused (the claim holds): %v", i, err)
			break
		}
		held = append(held, tc)
		io.WriteString(tc, http2.ClientPreface)
		fr := http2.NewFramer(tc, tc)
		fr.WriteSettings()
		// Read (and acknowledge) what the server says; go on once it has
		// opened its connection window.
		ready := make(chan struct{})
		var wmu sync.Mutex
		go func() {
			var once sync.Once
			for {
				f, err := fr.ReadFrame()
				if err != nil {
					once.Do(func() { close(ready) })
					return
				}
				switch f := f.(type) {
				case *http2.SettingsFrame:
					if !f.IsAck() {
						wmu.Lock()
						fr.WriteSettingsAck()
						wmu.Unlock()
					}
				case *http2.WindowUpdateFrame:
					if f.StreamID == 0 {
						once.Do(func() { close(ready) })
					}
				case *http2.GoAwayFrame:
					t.Logf("conn %d: GOAWAY %v %q", i, f.ErrCode, f.DebugData())
				case *http2.RSTStreamFrame:
					t.Logf("conn %d: RST_STREAM %d %v", i, f.StreamID, f.ErrCode)
				}
			}
		}()
		select {
		case <-ready:
		case <-time.After(5 * time.Second):
			t.Fatal("the server did not open its window")
		}
		wmu.Lock()
		var hb bytes.Buffer
		enc := hpack.NewEncoder(&hb)
		for s := 0; s < streams; s++ {
			id := uint32(2*s + 1)
			hb.Reset()
			for _, f := range [][2]string{{":method", "POST"}, {":scheme", "https"}, {":path", transport.MethodForward},
				{":authority", "ssi-node"}, {"content-type", "application/grpc"}, {"te", "trailers"}} {
				enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
			}
			if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hb.Bytes(), EndHeaders: true}); err != nil {
				t.Logf("conn %d stream %d: %v (the server closed the connection)", i, s, err)
				wmu.Unlock()
				continue conns
			}
			// The 5-byte gRPC prefix says 4 MiB - 1; all but its last byte come.
			fr.WriteData(id, false, []byte{0, 0x00, 0x3f, 0xff, 0xff})
			for left := 4<<20 - 2; left > 0; left -= len(chunk) {
				n := min(left, len(chunk))
				if err := fr.WriteData(id, false, chunk[:n]); err != nil {
					t.Logf("conn %d stream %d: %v (the server stopped reading)", i, s, err)
					wmu.Unlock()
					continue conns
				}
				sent += n
			}
		}
		wmu.Unlock()
	}
	time.Sleep(2 * time.Second)
	peak := stop()
	t.Logf("%d connections without a certificate, %d unfinished 4 MiB calls each (%d MiB sent): agent VmRSS %d MiB before, %d MiB peak",
		conns, streams, sent/mib, before/mib, peak/mib)
	if peak-before > 100*mib {
		t.Errorf("an unauthenticated client grew the agent by %d MiB", (peak-before)/mib)
	}
}

// TestAttackRemoteRootGroup: a node vouches for the identity of the users
// it runs processes for, and the executing node refuses only uid 0 from
// another node (allow_remote_root off). A rogue member asks another node
// to run a process as uid 65534 with gid 0 and supplementary group 0 (and
// may add any group, such as shadow): it runs there with root's group and
// reads a file of root's that only root's group may read. NFS's root
// squash, the model docs/security.md names, squashes gid 0 too; the page
// says a rogue node cannot "act as root on another node" unless that node
// sets allow_remote_root.
func TestAttackRemoteRootGroup(t *testing.T) {
	c, ctx := clusterWith(t, harness.Options{Nodes: 2, Members: true})
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	os.Chmod(filepath.Dir(dir), 0o755)
	secret := filepath.Join(dir, "root-group-only")
	if err := os.WriteFile(secret, []byte("root group secret\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	os.Chown(secret, 0, 0)
	b, err := pki.LoadBundle(c.Nodes[1].StateDir) // node 2, a member, played by the attacker
	if err != nil {
		t.Fatal(err)
	}
	pool := poolWith(t, b)
	cl, err := pool.Client(net.JoinHostPort(c.Nodes[0].Addr, "7947"), transport.Bulk)
	if err != nil {
		t.Fatal(err)
	}
	cpid, _ := vproc.Make(2, 4242)
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	stream, err := cl.Exec(sctx)
	if err != nil {
		t.Fatal(err)
	}
	start := rexec.JSON(rexec.TStart, &rexec.Spec{Argv: []string{"/bin/sh", "-c", "id; cat " + secret}, Dir: "/",
		Env: []string{"PATH=/usr/bin:/bin"}, UID: nobodyUID, GID: 0, Groups: []int{0}, Umask: 0o22, Home: 2, CPID: int64(cpid)})
	if err := stream.SendMsg(&start); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	for {
		var f rexec.Frame
		if err := stream.RecvMsg(&f); err != nil {
			break
		}
		switch f.Type {
		case rexec.TStdout, rexec.TStderr, rexec.TError:
			out.Write(f.Data)
		}
		if f.Type == rexec.TExit {
			break
		}
	}
	t.Logf("node 1 ran for member node 2:\n%s", out.String())
	if strings.Contains(out.String(), "root group secret") || strings.Contains(out.String(), "gid=0(") {
		t.Errorf("a member had node 1 (allow_remote_root off) run a process with root's group")
	}
}

// TestAttackRemoteSignalAsRoot: Signal takes the caller's uid from the
// request ("as its own node saw it"), and the executing node lets uid 0
// signal any process, with no allow_remote_root check. A rogue member
// sends SIGKILL for a root-owned process of another node (here a sleep
// the test runs as root; it could be sshd, or the agent) with uid 0, and
// it dies. docs/security.md: a rogue node cannot "act as root on another
// node, or on root's processes there, unless that node sets
// allow_remote_root".
func TestAttackRemoteSignalAsRoot(t *testing.T) {
	c, ctx := clusterWith(t, harness.Options{Nodes: 2, Members: true})
	victim := exec.Command("sleep", "300")
	if err := victim.Start(); err != nil {
		t.Fatal(err)
	}
	died := make(chan error, 1)
	go func() { died <- victim.Wait() }()
	t.Cleanup(func() { victim.Process.Kill() })

	b, err := pki.LoadBundle(c.Nodes[1].StateDir) // node 2, a member, played by the attacker
	if err != nil {
		t.Fatal(err)
	}
	pool := poolWith(t, b)
	cl, err := pool.Client(net.JoinHostPort(c.Nodes[0].Addr, "7947"), transport.Control)
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = cl.Signal(cctx, &transport.SignalRequest{Pid: victim.Process.Pid, Signal: 9, UID: 0, From: 2})
	t.Logf("Signal(pid %d, SIGKILL, uid 0) from member node 2 to node 1: %v", victim.Process.Pid, err)
	select {
	case werr := <-died:
		t.Errorf("a member killed root's process %d on node 1 (allow_remote_root off): %v", victim.Process.Pid, werr)
	case <-time.After(2 * time.Second):
	}
}

// TestAttackRemoteDumpAsRoot: Dump, like Signal, takes the caller's uid
// from the request, and uid 0 passes the owner check. A rogue member asks
// another node for the checkpoint image of a root-owned process there (a
// sleep the test runs as root with a secret in its environment) and reads
// the secret out of the image: any root daemon's memory (keys,
// passwords) is as open. docs/security.md: a rogue node cannot act "on
// root's processes there, unless that node sets allow_remote_root".
func TestAttackRemoteDumpAsRoot(t *testing.T) {
	c, ctx := clusterWith(t, harness.Options{Nodes: 2, Members: true})
	var sb [16]byte
	rand.Read(sb[:])
	secret := "SSI_ATTACK_SECRET=" + hex.EncodeToString(sb[:])
	victim := exec.Command("sleep", "300")
	victim.Env = []string{secret}
	victim.Stdin, victim.Stdout, victim.Stderr = nil, nil, nil
	if err := victim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { victim.Process.Kill(); victim.Wait() })

	b, err := pki.LoadBundle(c.Nodes[1].StateDir) // node 2, a member, played by the attacker
	if err != nil {
		t.Fatal(err)
	}
	pool := poolWith(t, b)
	cl, err := pool.Client(net.JoinHostPort(c.Nodes[0].Addr, "7947"), transport.Bulk)
	if err != nil {
		t.Fatal(err)
	}
	cpid, _ := vproc.Make(1, victim.Process.Pid)
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	stream, err := cl.Dump(sctx)
	if err != nil {
		t.Fatal(err)
	}
	req := migrate.JSON(migrate.KDumpRequest, migrate.DumpRequest{CPID: int64(cpid), UID: 0})
	if err := stream.SendMsg(&req); err != nil {
		t.Fatal(err)
	}
	var image bytes.Buffer
	var last string
	for {
		var m migrate.Msg
		if err := stream.RecvMsg(&m); err != nil {
			last = err.Error()
			break
		}
		image.Write(m.Head)
		image.Write(m.Data)
		last = m.Kind.String()
		if m.Kind == migrate.KFailed {
			last += ": " + string(m.Data)
			break
		}
		if m.Kind == migrate.KEnd {
			break
		}
	}
	t.Logf("Dump of root's pid %d on node 1 for member node 2 (uid 0): %d bytes, last %s", victim.Process.Pid, image.Len(), last)
	if bytes.Contains(image.Bytes(), []byte(secret)) {
		t.Errorf("a member read root's process memory on node 1 (allow_remote_root off): the image holds %q", secret)
	}
}

// TestAttackMigrateInRoot: the target of a migration checks the uid the
// source states in Begin (uid 0 is refused from another node with
// allow_remote_root off), then restores the process with the credentials
// in the image, which it never compares with that uid (imageAllowed does
// so only for a user's local restore). A rogue member takes the image of
// a root process of its own (here got with Dump from its own agent), and
// migrates it to node 1 stating uid 65534: node 1 restores it running as
// root. docs/security.md: a rogue node cannot "act as root on another
// node".
func TestAttackMigrateInRoot(t *testing.T) {
	c, ctx := clusterWith(t, harness.Options{Nodes: 2, Members: true})
	victim := exec.Command("sleep", "300") // root's, on "node 2" (loopback: the host)
	if err := victim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { victim.Process.Kill(); victim.Wait() })

	b, err := pki.LoadBundle(c.Nodes[1].StateDir) // node 2, a member, played by the attacker
	if err != nil {
		t.Fatal(err)
	}
	pool := poolWith(t, b)
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()

	// The image of a root process of node 2's own, taken by root on node 2
	// (local root may checkpoint anything there).
	cpid, _ := vproc.Make(2, victim.Process.Pid)
	imgFile := filepath.Join(shortTemp(t), "img")
	if out, err := exec.Command(binary, "--socket", c.Nodes[1].Socket, "checkpoint", fmt.Sprint(int64(cpid)), imgFile).CombinedOutput(); err != nil {
		t.Fatalf("ssi checkpoint on node 2: %v: %s", err, out)
	}
	data, err := os.ReadFile(imgFile)
	if err != nil {
		t.Fatal(err)
	}
	col := &collectConn{}
	w := migrate.NewImageWriter(col)
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	image := append(col.msgs, migrate.JSON(migrate.KEnd, migrate.End{ImageBytes: int64(len(data))}))

	// The layout the target stages first, from the image itself.
	img, err := checkpoint.Decode(migrate.NewImageReader(&sliceConn{msgs: image}))
	if err != nil {
		t.Fatalf("decoding the dumped image: %v", err)
	}
	if img.Creds != nil {
		t.Logf("the image's credentials: uid %v gid %v", img.Creds.Uid, img.Creds.Gid)
	}
	lay := make([]checkpoint.Mapping, len(img.Mappings))
	for i, mp := range img.Mappings {
		if mp.Kind != checkpoint.KindVDSO && mp.Kind != checkpoint.KindVVAR {
			mp.Data = nil
		}
		lay[i] = mp
	}

	// Node 1 is told it is uid 65534's.
	cl, err := pool.Client(net.JoinHostPort(c.Nodes[0].Addr, "7947"), transport.Bulk)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := cl.Migrate(sctx)
	if err != nil {
		t.Fatal(err)
	}
	begin := migrate.JSON(migrate.KBegin, migrate.Begin{ID: 1, CPID: int64(cpid), Source: 2, Pid: victim.Process.Pid, UID: nobodyUID})
	if err := ms.SendMsg(&begin); err != nil {
		t.Fatal(err)
	}
	var m migrate.Msg
	if err := ms.RecvMsg(&m); err != nil || m.Kind != migrate.KAccept {
		t.Logf("node 1 did not accept: %v %s %s (the claim holds)", err, m.Kind, m.Data)
		return
	}
	layout := migrate.JSON(migrate.KLayout, migrate.Layout{Pid: victim.Process.Pid, Mappings: lay})
	if err := ms.SendMsg(&layout); err != nil {
		t.Fatal(err)
	}
	m = migrate.Msg{}
	if err := ms.RecvMsg(&m); err != nil || m.Kind != migrate.KStaged {
		t.Logf("node 1 did not stage it: %v %s %s (the claim holds)", err, m.Kind, m.Data)
		return
	}
	for i := range image {
		if err := ms.SendMsg(&image[i]); err != nil {
			t.Fatal(err)
		}
	}
	m = migrate.Msg{}
	if err := ms.RecvMsg(&m); err != nil || m.Kind != migrate.KRestored {
		t.Logf("node 1 did not restore it: %v %s %s (the claim holds)", err, m.Kind, m.Data)
		return
	}
	var rs migrate.Restored
	m.Parse(&rs)
	commit := migrate.Msg{Kind: migrate.KCommit}
	ms.SendMsg(&commit)
	ms.RecvMsg(&m)
	defer unixKill(rs.Pid)
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", rs.Pid))
	if err != nil {
		t.Fatalf("the restored process %d: %v", rs.Pid, err)
	}
	for _, line := range strings.Split(string(st), "\n") {
		if strings.HasPrefix(line, "Uid:") || strings.HasPrefix(line, "Name:") {
			t.Logf("restored on node 1 as pid %d: %s", rs.Pid, line)
		}
		if f := strings.Fields(line); len(f) >= 3 && f[0] == "Uid:" && (f[1] == "0" || f[2] == "0") {
			t.Errorf("node 1 (allow_remote_root off) restored a process for member node 2, stated uid %d, running as root (%s)", nobodyUID, line)
		}
	}
}

// collectConn is a migrate.Conn that keeps what is sent on it.
type collectConn struct{ msgs []migrate.Msg }

func (c *collectConn) Send(m migrate.Msg) error {
	c.msgs = append(c.msgs, migrate.Msg{Kind: m.Kind, Data: append([]byte(nil), m.Data...), Head: append([]byte(nil), m.Head...)})
	return nil
}
func (c *collectConn) Recv() (migrate.Msg, error) { return migrate.Msg{}, io.EOF }

// sliceConn is a migrate.Conn that receives msgs, in order.
type sliceConn struct{ msgs []migrate.Msg }

func (c *sliceConn) Send(migrate.Msg) error { return nil }
func (c *sliceConn) Recv() (migrate.Msg, error) {
	if len(c.msgs) == 0 {
		return migrate.Msg{}, io.EOF
	}
	m := c.msgs[0]
	c.msgs = c.msgs[1:]
	return m, nil
}

func unixKill(pid int) {
	if p, err := os.FindProcess(pid); err == nil && pid > 1 {
		p.Kill()
	}
}

// TestAttackStolenKeyRenews: docs/security.md, "Certificates": "a stolen
// node key is thus good for at most 72 h even if nobody notices". Renew
// signs any certificate request for the caller's node ID, with any key:
// whoever holds a member's key and certificate gets a fresh certificate,
// for a key of its own, before the stolen one ends, and again before that
// one ends, for as long as nobody removes the node.
func TestAttackStolenKeyRenews(t *testing.T) {
	c, ctx := clusterWith(t, harness.Options{Nodes: 2, Members: true})
	b, err := pki.LoadBundle(c.Nodes[1].StateDir) // node 2's key and certificate, stolen
	if err != nil {
		t.Fatal(err)
	}
	_, stolenUntil, err := pki.CertLife(b.NodeCertPEM)
	if err != nil {
		t.Fatal(err)
	}
	mc := masterClientWith(t, ctx, c, b)
	time.Sleep(2 * time.Second)
	key, _ := pki.NewNodeKey() // the thief's own key
	nodes, _ := c.ListNodes(ctx, 1)
	var id string
	for _, n := range nodes {
		if n.Number == 2 {
			id = n.ID
		}
	}
	csr, err := pki.CreateCSR(key, id)
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := mc.Renew(cctx, &transport.RenewRequest{CSR: csr})
	if err != nil {
		t.Logf("Renew refused: %v (the claim holds)", err)
		return
	}
	_, until, _ := pki.CertLife(resp.CertPEM)
	t.Logf("stolen certificate valid until %v; the thief's new one, for a key of its own, until %v", stolenUntil.UTC(), until.UTC())
	if until.After(stolenUntil) {
		t.Errorf("with node 2's stolen key the thief got a certificate for a new key outliving the stolen one by %v", until.Sub(stolenUntil).Round(time.Second))
	}
}

// masterClientWith is a client of the master's RPC port that presents b's
// certificate (a loopback cluster: the test process dials it); the pool is
// closed at the end of the test.
func masterClientWith(t *testing.T, ctx context.Context, c *harness.Cluster, b *pki.Bundle) *transport.Client {
	t.Helper()
	masterNum, err := masterOf(ctx, c, 1)
	if err != nil {
		t.Fatal(err)
	}
	mc, err := poolWith(t, b).Client(net.JoinHostPort(c.Nodes[masterNum-1].Addr, "7947"), transport.Control)
	if err != nil {
		t.Fatal(err)
	}
	return mc
}

// poolWith is a connection pool that presents b's certificate, closed at
// the end of the test.
func poolWith(t *testing.T, b *pki.Bundle) *transport.Pool {
	t.Helper()
	conf, err := b.ClientTLS()
	if err != nil {
		t.Fatal(err)
	}
	pool := transport.NewPool(conf)
	t.Cleanup(pool.Close)
	return pool
}
