package agent

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/ssi-cluster/ssi/internal/api"
	"github.com/ssi-cluster/ssi/internal/pki"
	"github.com/ssi-cluster/ssi/internal/state"
)

// The administrator's routes: join tokens and node removal. Root only, on
// the socket, and only on a voter: a member that is not a voter is not
// trusted to mint tokens or remove nodes (the master checks that again
// for commands forwarded to it).
func (a *Agent) adminRoutes(mux *http.ServeMux) {
	admin := func(what string, body bool) access {
		acc := access{what: what, root: true, rootFor: "manage join tokens and nodes"}
		if body {
			acc.body = jsonBodyMax
		}
		return acc
	}
	mux.HandleFunc("GET /v1/tokens", guard(admin("token list", false), a.handleTokenList))
	mux.HandleFunc("POST /v1/tokens", guard(admin("token create", true), a.handleTokenCreate))
	mux.HandleFunc("DELETE /v1/tokens/{id}", guard(admin("token revoke", false), a.handleTokenRevoke))
	mux.HandleFunc("POST /v1/nodes/{n}/remove", guard(admin("node remove", false), a.handleNodeRemove))
	mux.HandleFunc("GET /v1/removed", guard(readOnly, a.handleRemovedList))
}

// requireVoter refuses administration on a node that is not a voter.
func (a *Agent) requireVoter(w http.ResponseWriter, what string) bool {
	self := a.Identity()
	var voter bool
	var voters []int
	a.store.FSM.Read(func(reg *state.Registry) {
		if n := reg.ByID(self.ID); n != nil {
			voter = n.Voter
		}
		for _, n := range reg.Sorted() {
			if n.Voter {
				voters = append(voters, n.Number)
			}
		}
	})
	if voter {
		return true
	}
	writeErr(w, http.StatusForbidden, "%s: node %d is not a voter; run it on a voter (nodes %v): only voters are trusted with tokens and removals", what, self.Number, voters)
	return false
}

// commit applies c through the master and writes an error for the caller
// when it fails; it returns the result's value.
func (a *Agent) commit(w http.ResponseWriter, r *http.Request, what string, c *state.Command) (json.RawMessage, bool) {
	res, err := a.apply(r.Context(), c)
	if err != nil {
		writeErr(w, http.StatusServiceUnavailable, "%s: %v", what, err)
		return nil, false
	}
	if err := res.Err(); err != nil {
		code := http.StatusConflict
		if errors.Is(err, state.ErrTokenUnknown) || errors.Is(err, state.ErrUnknownNode) {
			code = http.StatusNotFound
		}
		writeErr(w, code, "%s: %v", what, err)
		return nil, false
	}
	return res.Value, true
}

func (a *Agent) handleTokenList(w http.ResponseWriter, r *http.Request) {
	var out []api.Token
	now := time.Now()
	a.store.FSM.Read(func(reg *state.Registry) { out = reg.TokenViews(now) })
	writeJSON(w, http.StatusOK, out)
}

func (a *Agent) handleTokenCreate(w http.ResponseWriter, r *http.Request) {
	if !a.requireVoter(w, "token create") {
		return
	}
	var req api.TokenCreate
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeErr(w, http.StatusBadRequest, "token create: %v", err)
		return
	}
	var ttl time.Duration
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil || d < 0 {
			writeErr(w, http.StatusBadRequest, "token create: --ttl %q is not a duration such as 30m, 24h (0: never expires)", req.TTL)
			return
		}
		ttl = d
	}
	if req.MaxUses < 0 {
		writeErr(w, http.StatusBadRequest, "token create: --uses %d: want 0 (no limit) or more", req.MaxUses)
		return
	}
	tok, err := pki.NewToken(a.bundle.CA)
	if err != nil {
		writeErr(w, http.StatusInternalServerError, "token create: %v", err)
		return
	}
	h := tok.Hash()
	rec := &state.TokenRec{ID: tok.ID(), Hash: hex.EncodeToString(h[:]), Description: req.Description,
		Voter: req.Voter, MaxUses: req.MaxUses}
	if ttl > 0 {
		rec.Expires = time.Now().Add(ttl).UTC()
	}
	val, ok := a.commit(w, r, "token create", &state.Command{Op: state.OpTokenCreate, Token: rec})
	if !ok {
		return
	}
	var view api.Token
	json.Unmarshal(val, &view)
	a.log.Info("made a join token", "id", view.ID, "voter", view.Voter, "expires", view.Expires, "uses", view.MaxUses, "uid", callerOf(r).UID)
	writeJSON(w, http.StatusOK, api.TokenCreated{Token: view, Secret: tok.String()})
}

func (a *Agent) handleTokenRevoke(w http.ResponseWriter, r *http.Request) {
	if !a.requireVoter(w, "token revoke") {
		return
	}
	val, ok := a.commit(w, r, "token revoke", &state.Command{Op: state.OpTokenRevoke, TokenID: r.PathValue("id")})
	if !ok {
		return
	}
	var view api.Token
	json.Unmarshal(val, &view)
	a.log.Info("revoked a join token", "id", view.ID, "uid", callerOf(r).UID)
	writeJSON(w, http.StatusOK, view)
}

func (a *Agent) handleNodeRemove(w http.ResponseWriter, r *http.Request) {
	if !a.requireVoter(w, "node remove") {
		return
	}
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil || n <= 0 {
		writeErr(w, http.StatusBadRequest, "node remove: %q is not a node number", r.PathValue("n"))
		return
	}
	self := a.Identity()
	if n == self.Number {
		writeErr(w, http.StatusConflict, "node remove: node %d is this node; remove it from another voter (or use 'ssi node leave')", n)
		return
	}
	var target *state.NodeRec
	a.store.FSM.Read(func(reg *state.Registry) {
		if rec := reg.Nodes[n]; rec != nil {
			cp := *rec
			target = &cp
		}
	})
	if target == nil {
		writeErr(w, http.StatusNotFound, "node remove: no node %d (already removed, or never joined)", n)
		return
	}
	val, ok := a.commit(w, r, "node remove", &state.Command{Op: state.OpRemove, Number: n,
		Reason: "removed by root on node " + strconv.Itoa(self.Number)})
	if !ok {
		return
	}
	var t api.Transition
	json.Unmarshal(val, &t)
	a.log.Warn("removed a node from the cluster", "node", n, "name", target.Name, "epoch", t.Epoch, "uid", callerOf(r).UID)
	writeJSON(w, http.StatusOK, t)
}

func (a *Agent) handleRemovedList(w http.ResponseWriter, r *http.Request) {
	var out []api.Removed
	a.store.FSM.Read(func(reg *state.Registry) { out = reg.RemovedList() })
	writeJSON(w, http.StatusOK, out)
}

// initToken returns the record of the join token `ssi init` left in the
// state directory, for the first master to commit; nil when there is none.
func (a *Agent) initToken() *state.TokenRec {
	if !a.id.Bootstrap {
		return nil
	}
	b, err := os.ReadFile(filepath.Join(a.cfg.StateDir, pki.TokenFile))
	if err != nil {
		return nil
	}
	tok, err := pki.ParseToken(string(b))
	if err != nil {
		a.log.Warn("the join token ssi init wrote cannot be read; make one with 'ssi token create'", "err", err)
		return nil
	}
	h := tok.Hash()
	return &state.TokenRec{ID: tok.ID(), Hash: hex.EncodeToString(h[:]), Description: "made by ssi init",
		Expires: a.id.InitTokenExpires}
}
