package replica_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/replica"
)

// The engine's refusals cross the store with their sentinel and their words intact.
func TestAnswerCarriesTheEnginesError(t *testing.T) {
	for _, sentinel := range []error{engine.ErrStaleCommand, engine.ErrNotAllowed, engine.ErrForbidden, engine.ErrNotRunning} {
		orig := fmt.Errorf("%w: because", sentinel)
		data, _ := json.Marshal(replica.AnswerFor(orig, 9))
		_, err := replica.ParseAnswer(data)
		if !errors.Is(err, sentinel) || err.Error() != orig.Error() {
			t.Errorf("%v came back as %v", orig, err)
		}
	}
	data, _ := json.Marshal(replica.AnswerFor(nil, 42))
	if seq, err := replica.ParseAnswer(data); err != nil || seq != 42 {
		t.Errorf("an accepted command came back as %d, %v", seq, err)
	}
	// A hostile answer: unprintable words are not shown, an oversized one not read.
	if _, err := replica.ParseAnswer([]byte(`{"code":"forbidden","error":"\u001b[2Jgone"}`)); !errors.Is(err, engine.ErrForbidden) || strings.ContainsRune(err.Error(), 0x1b) {
		t.Errorf("an answer with escapes came back as %q", err)
	}
	if _, err := replica.ParseAnswer([]byte(`{"error":"` + strings.Repeat("x", replica.MaxRequest) + `"}`)); err == nil {
		t.Error("an oversized answer was read")
	}
}

// A stored command is checked before it reaches the engine.
func TestParseRequestRefusesHostileCommands(t *testing.T) {
	alice := engine.Actor{Name: "alice", Role: engine.RoleOperator, Source: "ssh", Fingerprint: "SHA256:x"}
	good, _ := json.Marshal(replica.NewRequest("id1", "b", engine.Command{Kind: engine.CommandPause, Actor: alice, Step: 2, Reason: "lunch"}))
	req, err := replica.ParseRequest(good)
	if err != nil || req.Command() != (engine.Command{Kind: engine.CommandPause, Actor: alice, Step: 2, Reason: "lunch"}) || req.Replica != "b" {
		t.Fatalf("ParseRequest(%s) = %+v, %v", good, req, err)
	}
	for name, c := range map[string]struct {
		data string
		want error
	}{
		"no role":          {`{"id":"x","kind":"pause","actor":{"name":"m"}}`, engine.ErrForbidden},
		"an unknown role":  {`{"id":"x","kind":"pause","actor":{"name":"m","role":"admin"}}`, engine.ErrForbidden},
		"escapes":          {`{"id":"x","kind":"pause","actor":{"name":"m\u001b[2J","role":"operator"}}`, engine.ErrNotAllowed},
		"no sender":        {`{"id":"x","kind":"pause","actor":{"role":"operator"}}`, engine.ErrNotAllowed},
		"not JSON":         {`pause!`, engine.ErrNotAllowed},
		"oversized reason": {`{"id":"x","kind":"pause","actor":{"name":"m","role":"operator"},"reason":"` + strings.Repeat("x", replica.MaxRequest) + `"}`, engine.ErrNotAllowed},
	} {
		if _, err := replica.ParseRequest([]byte(c.data)); !errors.Is(err, c.want) {
			t.Errorf("%s: ParseRequest = %v; want %v", name, err, c.want)
		}
	}
}

// stubRelay answers every command with err.
type stubRelay struct {
	err error
	got []engine.Command
}

func (s *stubRelay) Relay(_ context.Context, cmd engine.Command) (int64, error) {
	s.got = append(s.got, cmd)
	return 0, s.err
}

// A follower with a relay passes its commands on and returns the leader's answer as is.
func TestFollowerRelays(t *testing.T) {
	f := replica.NewFollower(engine.State{})
	r := &stubRelay{err: fmt.Errorf("%w: x", engine.ErrStaleCommand)}
	f.RelayTo(r)
	cmd := engine.Command{Kind: engine.CommandAdvance, Actor: engine.Actor{Name: "a", Role: engine.RoleOperator}, Step: 1}
	if err := f.Do(context.Background(), cmd); !errors.Is(err, engine.ErrStaleCommand) || len(r.got) != 1 || r.got[0] != cmd {
		t.Fatalf("Do = %v, relayed %v", err, r.got)
	}
	r.err = nil
	if err := f.Do(context.Background(), cmd); err != nil {
		t.Fatalf("an accepted command: %v", err)
	}
}
