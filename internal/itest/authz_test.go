package itest

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ssi-cluster/ssi/internal/harness"
	"github.com/ssi-cluster/ssi/internal/migrate"
	"github.com/ssi-cluster/ssi/internal/pki"
	"github.com/ssi-cluster/ssi/internal/rexec"
	"github.com/ssi-cluster/ssi/internal/transport"
)

// The node that owns a process decides what is done to it (package
// authz): a rogue node, a member whose certificate is in an attacker's
// hands, acts on nothing of root's, and as nobody but users who are not
// root; a user acts only on its own processes, from any node.

// dialIn connects to addr from inside the network namespace netns: a
// thread of this process joins it for the dial (and ends with it), so
// the connection is made from that node's address.
func dialIn(netns, addr string) (net.Conn, error) {
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread, in another namespace, dies with us
		f, err := os.Open(filepath.Join("/run/netns", netns))
		if err != nil {
			ch <- res{nil, err}
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- res{nil, fmt.Errorf("setns %s: %w", netns, err)}
			return
		}
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		ch <- res{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

// netnsProxy listens on the host's loopback and relays each connection
// to addr, dialled from inside netns (see dialIn); it returns its
// address.
func netnsProxy(t *testing.T, netns, addr string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer in.Close()
				out, err := dialIn(netns, addr)
				if err != nil {
					return
				}
				defer out.Close()
				go func() {
					io.Copy(out, in)
					out.(*net.TCPConn).CloseWrite()
				}()
				io.Copy(in, out)
			}()
		}
	}()
	return l.Addr().String()
}

// rogue is a client of node `of`'s RPCs with node `as`'s own credentials
// (its bundle from its state directory), connecting from node as's
// address: what an attacker holding node as does.
type rogue struct {
	control, bulk *transport.Client
}

func newRogue(t *testing.T, c *harness.Cluster, as, of int) *rogue {
	t.Helper()
	b, err := pki.LoadBundle(c.Nodes[as-1].StateDir)
	if err != nil {
		t.Fatal(err)
	}
	conf, err := b.ClientTLS()
	if err != nil {
		t.Fatal(err)
	}
	return rogueWith(t, c, as, of, conf)
}

// rogueWith is newRogue with the TLS configuration conf.
func rogueWith(t *testing.T, c *harness.Cluster, as, of int, conf *tls.Config) *rogue {
	t.Helper()
	var err error
	addr := netnsProxy(t, c.Nodes[as-1].Netns, net.JoinHostPort(c.Nodes[of-1].Addr, "7947"))
	pool := transport.NewPool(conf)
	t.Cleanup(pool.Close)
	r := &rogue{}
	if r.control, err = pool.Client(addr, transport.Control); err != nil {
		t.Fatal(err)
	}
	if r.bulk, err = pool.Client(addr, transport.Bulk); err != nil {
		t.Fatal(err)
	}
	return r
}

// refused checks that err is PermissionDenied with want in its message.
func refused(t *testing.T, what string, err error, want string) {
	t.Helper()
	st, _ := status.FromError(err)
	if err == nil || st.Code() != codes.PermissionDenied || !strings.Contains(st.Message(), want) {
		t.Errorf("%s: %v; want PermissionDenied with %q", what, err, want)
		return
	}
	t.Logf("%s: refused: %s", what, st.Message())
}

// stillRuns checks that process cpid still runs on node `on` as pid,
// not stopped.
func stillRuns(t *testing.T, ctx context.Context, c *harness.Cluster, cpid int64, on, pid int) {
	t.Helper()
	w, err := whereJSON(ctx, c, on, cpid)
	if err != nil || w.Node != on || w.Pid != pid || w.State == "T" || w.State == "Z" {
		t.Fatalf("process %d: %+v, %v; want it running on node %d as pid %d", cpid, w, err, on, pid)
	}
}

// TestRogueNode: node 3's own credentials, used directly against node
// 2's RPCs (allow_remote_root off, the default), get nothing of a
// process of root's started natively on node 2 with a secret in its
// environment: no signal, freeze, dump, move or execution as root, no
// forged word of where it runs, and no environment in the process
// table. Each refusal names node 2, the action and the rule; the
// process runs on untouched.
func TestRogueNode(t *testing.T) {
	c, ctx := startCluster(t, 3)
	const secret = "SSI_TEST_SECRET=hunter2-b8d1c0"
	// setsid: a process group of its own (pgid = pid), for the group signal.
	pid := startNative(t, c, 2, "", "setsid env "+secret+" sleep 610 </dev/null >/dev/null 2>&1", nil)
	cpid := int64(2)<<22 | int64(pid)
	proc := fmt.Sprintf("process %d", cpid)
	stillRuns(t, ctx, c, cpid, 2, pid)
	r := newRogue(t, c, 3, 2)
	call := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, 15*time.Second) }
	offRule := " from node 3: allow_remote_root is off"

	t.Run("signal", func(t *testing.T) {
		cctx, cancel := call()
		defer cancel()
		for _, uid := range []int{0, 65534} { // root, and a user it says it acts for
			_, err := r.control.Signal(cctx, &transport.SignalRequest{Pid: pid, Signal: int(unix.SIGKILL), UID: uid, From: 3})
			refused(t, fmt.Sprintf("SIGKILL for uid %d", uid), err, "node 2 refuses signal of "+proc+" for "+map[int]string{0: "root", 65534: "uid 65534"}[uid]+offRule)
		}
		_, err := r.control.Signal(cctx, &transport.SignalRequest{Pid: pid, Group: true, Signal: int(unix.SIGKILL), UID: 0, From: 3})
		refused(t, "SIGKILL to its group", err, "node 2 refuses signal of "+proc+" for root"+offRule)
		_, err = r.control.Signal(cctx, &transport.SignalRequest{Pid: pid, Signal: int(unix.SIGKILL), UID: 0, From: 1})
		refused(t, "SIGKILL saying it comes from node 1", err, "node 2 refuses a request from node 3 that says it comes from node 1")
		stillRuns(t, ctx, c, cpid, 2, pid)
	})

	t.Run("freeze", func(t *testing.T) {
		cctx, cancel := call()
		defer cancel()
		_, err := r.control.Signal(cctx, &transport.SignalRequest{Pid: pid, Signal: int(unix.SIGSTOP), UID: 0, From: 3})
		refused(t, "SIGSTOP", err, "node 2 refuses freeze of "+proc+" for root"+offRule)
		stillRuns(t, ctx, c, cpid, 2, pid)
	})

	t.Run("checkpoint", func(t *testing.T) {
		for _, uid := range []int{0, 65534} {
			cctx, cancel := call()
			s, err := r.bulk.Dump(cctx)
			if err != nil {
				cancel()
				t.Fatal(err)
			}
			req := migrate.JSON(migrate.KDumpRequest, migrate.DumpRequest{CPID: cpid, UID: uid, Kill: true})
			if err := s.SendMsg(&req); err != nil {
				cancel()
				t.Fatal(err)
			}
			var got []migrate.Kind
			for {
				var m migrate.Msg
				if err = s.RecvMsg(&m); err != nil {
					break
				}
				got = append(got, m.Kind)
				if strings.Contains(string(m.Data), "hunter2") {
					t.Errorf("the dump sent the secret")
				}
			}
			cancel()
			if len(got) != 0 {
				t.Errorf("dump for uid %d: the node sent %v", uid, got)
			}
			refused(t, fmt.Sprintf("dump for uid %d", uid), err, "node 2 refuses checkpoint of "+proc+" for ")
			if err != nil && !strings.HasSuffix(err.Error(), offRule) {
				t.Errorf("dump for uid %d: %v; want the rule %q", uid, err, offRule)
			}
		}
		stillRuns(t, ctx, c, cpid, 2, pid)
	})

	t.Run("move", func(t *testing.T) {
		cctx, cancel := call()
		defer cancel()
		_, err := r.bulk.Move(cctx, &transport.MoveRequest{CPID: cpid, To: 3, UID: 0, From: 3})
		refused(t, "move to node 3", err, "node 2 refuses migration of "+proc+" for root"+offRule)
		_, err = r.bulk.Move(cctx, &transport.MoveRequest{CPID: cpid, To: 3, UID: 0, From: 1})
		refused(t, "move saying it comes from node 1", err, "node 2 refuses a request from node 3 that says it comes from node 1")
		stillRuns(t, ctx, c, cpid, 2, pid)
	})

	t.Run("exec as root", func(t *testing.T) {
		marker := filepath.Join(shortTemp(t), "pwned")
		run := func(home, uid int, groups ...int) (string, int, error) {
			cctx, cancel := call()
			defer cancel()
			s, err := r.bulk.Exec(cctx)
			if err != nil {
				return "", 0, err
			}
			spec := rexec.Spec{Argv: []string{"/bin/sh", "-c", "echo pwned >" + marker}, Dir: "/", UID: uid, GID: uid,
				Groups: groups, Home: home, CPID: int64(home)<<22 | 4000}
			start := rexec.JSON(rexec.TStart, spec)
			if err := s.SendMsg(&start); err != nil {
				return "", 0, err
			}
			return execFrames(s)
		}
		msg, code, err := run(3, 0)
		if err != nil || code != rexec.ExitCannotRun || !strings.Contains(msg, "node 2 refuses execution of process "+strconv.Itoa(3<<22|4000)+" for root"+offRule) {
			t.Errorf("exec as root: %q, exit %d, %v; want node 2's refusal and exit 126", msg, code, err)
		}
		// As a user, with the groups root and disk, which it is not in.
		msg, code, err = run(3, 65534, 0, 6)
		if want := "node 2 refuses execution of process " + strconv.Itoa(3<<22|4000) + " for uid 65534 from node 3: gid 0 is not one of uid 65534's groups on node 2"; err != nil || code != rexec.ExitCannotRun || !strings.Contains(msg, want) {
			t.Errorf("exec as nobody in group root: %q, exit %d, %v; want %q and exit 126", msg, code, err, want)
		}
		_, _, err = run(2, 0) // its home says node 2: not the caller
		refused(t, "exec with node 2 as its home", err, "may run processes only with its own home")
		time.Sleep(200 * time.Millisecond)
		if exists(marker) {
			t.Errorf("node 2 ran the rogue's command as root")
		}
	})

	t.Run("migration in", func(t *testing.T) {
		begin := func(b migrate.Begin) error {
			cctx, cancel := call()
			defer cancel()
			s, err := r.bulk.Migrate(cctx)
			if err != nil {
				return err
			}
			m := migrate.JSON(migrate.KBegin, b)
			if err := s.SendMsg(&m); err != nil {
				return err
			}
			for {
				var m migrate.Msg
				if err := s.RecvMsg(&m); err != nil {
					return err
				}
				if m.Kind == migrate.KAccept {
					return fmt.Errorf("node 2 accepted the migration")
				}
			}
		}
		// A process of root's, of node 3, then one that says it is node
		// 2's own coming home (node 2 did not send it to node 3).
		for _, id := range []int64{int64(3)<<22 | 4001, int64(2)<<22 | 4002} {
			err := begin(migrate.Begin{ID: 7, CPID: id, Source: 3, Pid: 4001, UID: 0})
			refused(t, fmt.Sprintf("root's process %d in", id), err, fmt.Sprintf("node 2 refuses migration in of process %d for root%s", id, offRule))
		}
		err := begin(migrate.Begin{ID: 8, CPID: int64(1)<<22 | 4003, Source: 1, Pid: 4003, UID: 65534})
		refused(t, "a migration saying it comes from node 1", err, "may send only its own processes")
	})

	t.Run("forged moved", func(t *testing.T) {
		cctx, cancel := call()
		defer cancel()
		_, err := r.control.Moved(cctx, &transport.MovedRequest{CPID: cpid, Node: 3, Pid: 1})
		refused(t, "moved to node 3", err, fmt.Sprintf("node 2 refuses node 3's word that %s runs there: it did not leave node 2", proc))
		_, err = r.control.Moved(cctx, &transport.MovedRequest{CPID: cpid, Node: 1, Pid: 1})
		refused(t, "moved to node 1", err, "only that node may say so")
		for _, from := range []int{1, 2, 3} {
			stillRuns(t, ctx, c, cpid, 2, pid) // node 2 answers for it, from every node
			if w, err := whereJSON(ctx, c, from, cpid); err != nil || w.Node != 2 {
				t.Errorf("where from node %d: %+v, %v; want node 2", from, w, err)
			}
		}
		o, err := r.control.MoveOutcome(cctx, &transport.MoveOutcomeRequest{ID: 7})
		if err != nil || o.Decided {
			t.Errorf("move outcome of a migration not its own: %+v, %v", o, err)
		}
	})

	t.Run("procs", func(t *testing.T) {
		cctx, cancel := call()
		defer cancel()
		found := false
		for _, req := range []*transport.ProcsRequest{{}, {Pid: pid}, {Home: 3}, {CPID: cpid}} {
			resp, err := r.control.Procs(cctx, req)
			if err != nil {
				t.Fatalf("procs %+v: %v", req, err)
			}
			b, _ := json.Marshal(resp)
			if strings.Contains(string(b), "hunter2") {
				t.Errorf("procs %+v gave the environment: %s", req, b)
			}
			for _, p := range resp.Procs {
				found = found || p.CPID == cpid && strings.HasPrefix(p.Command, "sleep 610")
			}
		}
		if !found {
			t.Errorf("procs does not list the process as ps does")
		}
	})

	// Every member holds the CA key: node 3 mints certificates for node
	// 2's own ID and for node 1's. Node 2 takes neither for a local
	// caller.
	t.Run("minted identities", func(t *testing.T) {
		cctx, cancel := call()
		defer cancel()
		b, err := pki.LoadBundle(c.Nodes[2].StateDir)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{2, 1} {
			ping, err := newRogue(t, c, 3, n).control.Ping(cctx)
			if err != nil {
				t.Fatal(err)
			}
			certPEM, keyPEM, err := b.CA.IssueNode(ping.NodeID, []net.IP{net.ParseIP(c.Nodes[2].Addr)}, 0)
			if err != nil {
				t.Fatal(err)
			}
			conf, err := pki.ClientTLS(certPEM, keyPEM, b.CA.Pool())
			if err != nil {
				t.Fatal(err)
			}
			fake := rogueWith(t, c, 3, 2, conf)
			_, err = fake.control.Signal(cctx, &transport.SignalRequest{Pid: pid, Signal: int(unix.SIGKILL), UID: 0})
			want := "node 2 refuses a call made with its own identity"
			if n == 1 {
				want = "node 2 refuses signal of " + proc + " for root from node 1: allow_remote_root is off"
			}
			refused(t, fmt.Sprintf("SIGKILL as node %d", n), err, want)
			if n == 2 {
				_, err = fake.bulk.Move(cctx, &transport.MoveRequest{CPID: cpid, To: 3, UID: 0})
				refused(t, "move as node 2", err, want)
			}
		}
		stillRuns(t, ctx, c, cpid, 2, pid)
	})

	b, _ := os.ReadFile(c.Nodes[1].Log)
	if n := strings.Count(string(b), `msg=refused`); !t.Failed() && n < 12 {
		t.Errorf("node 2 logged %d refusals, want every one", n)
	}
	stillRuns(t, ctx, c, cpid, 2, pid)
}

// execFrames reads an Exec stream to its end: the error frames' text,
// the exit status, and the stream's error if it ended without one.
func execFrames(s grpc.ClientStream) (string, int, error) {
	var msg strings.Builder
	for {
		var f rexec.Frame
		if err := s.RecvMsg(&f); err != nil {
			return msg.String(), -1, err
		}
		switch f.Type {
		case rexec.TError:
			msg.Write(f.Data)
		case rexec.TExit:
			st, err := rexec.ParseStatus(f.Data)
			return msg.String(), st.Code, err
		}
	}
}

// gone waits until process cpid has ended: not found from node from, or
// a zombie (a native process's parent, outside the node, reaps it late).
func gone(t *testing.T, ctx context.Context, c *harness.Cluster, from int, cpid int64) {
	t.Helper()
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	err := c.WaitFor(cctx, "the process to end", func() (bool, error) {
		w, err := whereJSON(cctx, c, from, cpid)
		if err != nil && !strings.Contains(err.Error(), "no process") {
			return false, err
		}
		return check(err != nil || w.State == "Z", "it is still found: %+v", w)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestOwnerDecidesForUsers: on a cluster as it comes (allow_remote_root
// off), a user on node 1 may not kill, freeze, checkpoint or move another
// user's process on node 2, nor may root on node 1 (from another node);
// the process's owner may do all of it from node 1, and signal it from
// node 2 once it moved to node 1. Every refusal is node 2's, printed by
// the CLI as it is.
func TestOwnerDecidesForUsers(t *testing.T) {
	c, ctx := startCluster(t, 2)
	dir := shortTempX(t)
	os.Chmod(dir, 0o777)
	pid := startNative(t, c, 2, asNobody, "sleep 611 </dev/null >/dev/null 2>&1", nil)
	cpid := int64(2)<<22 | int64(pid)
	id := strconv.FormatInt(cpid, 10)
	stillRuns(t, ctx, c, cpid, 2, pid)
	for _, who := range []struct{ user, name, rule string }{
		{"1000:1000", "uid 1000", "the process belongs to uid 65534, not to uid 1000"},
		{"", "root", "allow_remote_root is off"},
	} {
		for _, v := range []struct {
			action string
			args   []string
		}{
			{"signal", []string{"kill", "-KILL", id}},
			{"freeze", []string{"freeze", id}},
			{"checkpoint", []string{"checkpoint", id, filepath.Join(dir, "not-yours.img")}},
			{"migration", []string{"migrate", id, "1"}},
		} {
			o := ssiAs(t, c, 1, who.user, v.args...)
			want := fmt.Sprintf("node 2 refuses %s of process %s for %s from node 1: %s", v.action, id, who.name, who.rule)
			if o.code == 0 || !strings.Contains(o.stderr, want) {
				t.Errorf("%s as %s on node 1: %v; want %q", v.args[0], who.name, o, want)
			}
			t.Logf("%s as %s: %s", v.args[0], who.name, strings.TrimSpace(o.stderr))
			stillRuns(t, ctx, c, cpid, 2, pid)
		}
	}
	if exists(filepath.Join(dir, "not-yours.img")) {
		t.Errorf("a refused checkpoint left an image")
	}

	// Its owner, from node 1.
	nobody := "65534:65534"
	if o := ssiAs(t, c, 1, nobody, "freeze", "-o", "json", id); o.code != 0 || !strings.Contains(o.stdout, `"ok": true`) {
		t.Fatalf("freeze -o json by its owner: %v", o)
	}
	waitProcState(t, ctx, c, cpid, "T")
	if o := ssiAs(t, c, 1, nobody, "continue", id); o.code != 0 {
		t.Fatalf("continue by its owner: %v", o)
	}
	stillRuns(t, ctx, c, cpid, 2, pid)
	img := filepath.Join(dir, "own.img")
	if o := ssiAs(t, c, 1, nobody, "checkpoint", "-o", "json", id, img); o.code != 0 || !exists(img) || !strings.Contains(o.stdout, `"bytes"`) {
		t.Fatalf("checkpoint -o json by its owner: %v", o)
	}
	// Another user may not restore it (the image made readable to it).
	os.Chmod(img, 0o644)
	o := ssiAs(t, c, 2, "1000:1000", "restore", img)
	if want := "node 2 refuses restore for uid 1000 on this node: the process belongs to uid 65534, not to uid 1000"; o.code == 0 || !strings.Contains(o.stderr, want) {
		t.Errorf("restore by uid 1000: %v; want %q", o, want)
	}
	t.Logf("restore as uid 1000: %s", strings.TrimSpace(o.stderr))
	if o := ssiAs(t, c, 1, nobody, "migrate", id, "1"); o.code != 0 {
		t.Fatalf("migrate by its owner: %v", o)
	}
	waitWhere(t, ctx, c, 2, cpid, 1)

	// A process of nobody's holding a file that only root may open (its
	// stdin, opened by a root shell) does not move: the target would
	// open it for it as root.
	rootOnly := filepath.Join(dir, "root-only")
	if err := os.WriteFile(rootOnly, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pid2 := startNative(t, c, 2, asNobody, "sleep 613 <"+rootOnly+" >/dev/null 2>&1", nil)
	id2 := strconv.FormatInt(int64(2)<<22|int64(pid2), 10)
	o = ssiAs(t, c, 1, nobody, "migrate", id2, "1")
	if want := "node 1 refuses migration in of process " + id2 + " for uid 65534 from node 2: " + rootOnly + ": permission denied"; o.code == 0 || !strings.Contains(o.stderr, want) {
		t.Errorf("migrate with a file only root may open: %v; want %q", o, want)
	}
	t.Logf("migrate with a root-only file: %s", strings.TrimSpace(o.stderr))
	stillRuns(t, ctx, c, int64(2)<<22|int64(pid2), 2, pid2)

	// Now node 1 owns it: root on node 2 is refused there, its owner on
	// node 2 is not.
	o = ssiAs(t, c, 2, "", "kill", "-KILL", id)
	if want := "node 1 refuses signal of process " + id + " for root from node 2: allow_remote_root is off"; o.code == 0 || !strings.Contains(o.stderr, want) {
		t.Errorf("kill as root on node 2: %v; want %q", o, want)
	}
	if o := ssiAs(t, c, 2, nobody, "kill", "-KILL", id); o.code != 0 {
		t.Fatalf("kill by its owner on node 2: %v", o)
	}
	gone(t, ctx, c, 2, cpid)
}

// TestRemoteRootAllowed: with allow_remote_root on, root on node 1 may
// freeze, continue, checkpoint and kill a process of root's on node 2.
func TestRemoteRootAllowed(t *testing.T) {
	c, ctx := startCluster(t, 2, "--allow-remote-root", "true")
	dir := shortTempX(t)
	pid := startNative(t, c, 2, "", "sleep 612 </dev/null >/dev/null 2>&1", nil)
	cpid := int64(2)<<22 | int64(pid)
	id := strconv.FormatInt(cpid, 10)
	for _, args := range [][]string{{"freeze", id}, {"continue", id}, {"checkpoint", id, filepath.Join(dir, "root.img")}} {
		if o := ssiAs(t, c, 1, "", args...); o.code != 0 {
			t.Fatalf("%s as root on node 1: %v", args[0], o)
		}
	}
	stillRuns(t, ctx, c, cpid, 2, pid)
	if o := ssiAs(t, c, 1, "", "kill", "-KILL", id); o.code != 0 {
		t.Fatalf("kill as root on node 1: %v", o)
	}
	gone(t, ctx, c, 1, cpid)
}
