package accounts

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// testParams make hashing cheap: the tests check behaviour, not cost.
var testParams = HashParams{Memory: 64, Iterations: 1, Parallelism: 1}

func TestMay(t *testing.T) {
	admin := UserPrincipal(User{Name: "a", Role: RoleAdmin}, ScopeWrite, true)
	bureau := UserPrincipal(User{Name: "b", Role: RoleBureau, Bureaus: []string{"b1", "b2"}}, ScopeWrite, false)
	readBureau := UserPrincipal(User{Name: "b", Role: RoleBureau, Bureaus: []string{"b1"}}, ScopeRead, false)
	reviewer := UserPrincipal(User{Name: "r", Role: RoleReviewer}, ScopeWrite, true)
	readAdmin := UserPrincipal(User{Name: "a", Role: RoleAdmin}, ScopeRead, false)
	tok := AdminTokenPrincipal()
	for _, c := range []struct {
		name   string
		p      Principal
		a      Action
		bureau string
		want   bool
	}{
		{"admin creates for any bureau", admin, CreateDraft, "b9", true},
		{"admin manages a draft of no bureau record", admin, ManageDraft, "", true},
		{"admin token manages users", tok, ManageAccounts, "", true},
		{"admin token has no own account", tok, OwnAccount, "", false},
		{"bureau creates for its own", bureau, CreateDraft, "b2", true},
		{"bureau creates for another", bureau, CreateDraft, "b3", false},
		{"bureau manages its own", bureau, ManageDraft, "b1", true},
		{"bureau, draft of no record", bureau, ManageDraft, "", false},
		{"bureau reads its own", bureau, ReadComments, "b1", true},
		{"bureau reads another's", bureau, ReadComments, "b3", false},
		{"bureau manages users", bureau, ManageAccounts, "", false},
		{"bureau lists users", bureau, ReadAccounts, "", false},
		{"bureau own account", bureau, OwnAccount, "", true},
		{"read token reads", readBureau, ReadComments, "b1", true},
		{"read token manages", readBureau, ManageDraft, "b1", false},
		{"read admin token creates", readAdmin, CreateDraft, "b1", false},
		{"read admin token lists users", readAdmin, ReadAccounts, "", true},
		{"reviewer reads any", reviewer, ReadComments, "b7", true},
		{"reviewer reads a draft of no record", reviewer, ReadComments, "", true},
		{"reviewer manages", reviewer, ManageDraft, "b7", false},
		{"reviewer creates", reviewer, CreateDraft, "b7", false},
		{"nobody", Principal{}, ReadComments, "b1", false},
	} {
		if got := c.p.May(c.a, c.bureau); got != c.want {
			t.Errorf("%s: May = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		u      User
		fields []string
	}{
		{User{Name: "zhang.san", Role: RoleBureau, Bureaus: []string{"b1"}}, nil},
		{User{Name: "admin", Role: RoleAdmin}, nil},
		{User{Name: "a", Role: RoleAdmin}, []string{"name"}},
		{User{Name: "Zhang", Role: RoleAdmin}, []string{"name"}},
		{User{Name: "x y", Role: RoleReviewer}, []string{"name"}},
		{User{Name: "bob", Role: RoleBureau}, []string{"bureaus"}},
		{User{Name: "bob", Role: RoleReviewer, Bureaus: []string{"b1"}}, []string{"bureaus"}},
		{User{Name: "bob", Role: "root"}, []string{"role"}},
	} {
		err := c.u.Validate()
		var ve *ValidationError
		if c.fields == nil {
			if err != nil {
				t.Errorf("%+v: %v", c.u, err)
			}
			continue
		}
		if !errors.As(err, &ve) || len(ve.Fields) != len(c.fields) {
			t.Errorf("%+v: %v, want fields %v", c.u, err, c.fields)
			continue
		}
		for _, f := range c.fields {
			if _, ok := ve.Fields[f]; !ok {
				t.Errorf("%+v: no problem with %s: %v", c.u, f, err)
			}
		}
	}
	for pw, key := range map[string]string{
		"short":                  "err.password.short",
		"alice-alice-alice":      "",
		"Alice":                  "err.password.short",
		"ALICE.WONDERLAND":       "",
		"a.good.long.passphrase": "",
		"\xff\xfe not utf8 here": "err.utf8",
	} {
		err := ValidatePassword("alice", pw)
		var ve *ValidationError
		switch {
		case key == "" && err != nil:
			t.Errorf("%q: %v", pw, err)
		case key != "" && (!errors.As(err, &ve) || ve.Fields["password"].Key != key):
			t.Errorf("%q: %v, want %s", pw, err, key)
		}
	}
	if err := ValidatePassword("alice.wonderland", "Alice.Wonderland"); err == nil {
		t.Error("the user's name as a password")
	}
	if BureauKey("  洪雅县（司法局）\u3000 ") != "洪雅县(司法局)" || BureauKey(" \t") != "" {
		t.Errorf("BureauKey: %q", BureauKey("  洪雅县（司法局）\u3000 "))
	}
	if ValidateToken("admin", "x") == nil || ValidateToken(ScopeRead, " ") == nil || ValidateToken(ScopeWrite, "ci") != nil {
		t.Error("ValidateToken")
	}
}

func TestSessionPolicy(t *testing.T) {
	p := SessionPolicy{Idle: 30 * time.Minute, Absolute: 2 * time.Hour}
	t0 := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	u := User{Name: "alice", Role: RoleAdmin, Epoch: 3}
	s := Session{User: "alice", Epoch: 3, Created: t0, Seen: t0}
	for _, c := range []struct {
		name string
		s    Session
		u    User
		now  time.Time
		ok   bool
	}{
		{"fresh", s, u, t0.Add(time.Minute), true},
		{"idle", s, u, t0.Add(30 * time.Minute), false},
		{"used, within absolute", Session{User: "alice", Epoch: 3, Created: t0, Seen: t0.Add(100 * time.Minute)}, u, t0.Add(110 * time.Minute), true},
		{"absolute", Session{User: "alice", Epoch: 3, Created: t0, Seen: t0.Add(119 * time.Minute)}, u, t0.Add(2 * time.Hour), false},
		{"epoch moved on", s, User{Name: "alice", Role: RoleAdmin, Epoch: 4}, t0, false},
		{"disabled", s, User{Name: "alice", Role: RoleAdmin, Epoch: 3, Disabled: true}, t0, false},
		{"someone else's", s, User{Name: "bob", Role: RoleAdmin, Epoch: 3}, t0, false},
	} {
		err := p.Check(c.s, c.u, c.now)
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrUnauthenticated)) {
			t.Errorf("%s: %v, want ok=%v", c.name, err, c.ok)
		}
	}
}

func TestHasher(t *testing.T) {
	h, err := NewHasher(testParams, 1)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	hash, err := h.Hash(ctx, "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := h.Check(ctx, "correct horse battery", hash); !ok || err != nil {
		t.Errorf("right password: %v %v", ok, err)
	}
	if ok, _ := h.Check(ctx, "correct horse battery!", hash); ok {
		t.Error("wrong password matched")
	}
	if ok, _ := h.Check(ctx, "consult: no such user", ""); ok {
		t.Error("the dummy matched a user that does not exist")
	}
	// The one slot is taken: a check waits, and gives up with its context.
	h.slots <- struct{}{}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := h.Check(cctx, "x", hash); !errors.Is(err, context.Canceled) {
		t.Errorf("check with no slot: %v", err)
	}
	<-h.slots
}

// TestActorsAreRecordActors: every actor accounts makes is one the record
// writes, so that no change of a valid user is refused for its actor.
func TestActorsAreRecordActors(t *testing.T) {
	for _, name := range []string{"ab", "zhang.san", "ci-2", "a_b", "0" + strings.Repeat("x", 63)} {
		if !ValidName(name) {
			t.Fatalf("%q is not a valid name", name)
		}
		if a := UserActor(name); !a.Valid() {
			t.Errorf("UserActor(%q) = %q, not a valid record actor", name, a)
		}
	}
	for _, a := range []Actor{ActorAdminToken, ConsoleActor("root"), AdminTokenPrincipal().Actor} {
		if !a.Valid() {
			t.Errorf("%q is not a valid record actor", a)
		}
	}
}
