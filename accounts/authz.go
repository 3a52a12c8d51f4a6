package accounts

import "slices"

// Action is something a caller asks to do; Principal.May decides.
type Action string

const (
	// CreateDraft: publish a draft for a bureau.
	CreateDraft Action = "create_draft"
	// ManageDraft: change a draft's limits, ask for an interim digest.
	ManageDraft Action = "manage_draft"
	// ReadComments: read a draft's comments with the commenters' contacts.
	ReadComments Action = "read_comments"
	// ManageAccounts: make users and bureaus, disable users.
	ManageAccounts Action = "manage_accounts"
	// ReadAccounts: list users and bureaus, read the staff record.
	ReadAccounts Action = "read_accounts"
	// OwnAccount: a signed-in user's own password and tokens.
	OwnAccount Action = "own_account"
)

// reads are the actions a read-scoped token may take.
var reads = []Action{ReadComments, ReadAccounts}

// Principal is who is calling, as authenticated: a user (by session or
// token) or the admin token.
type Principal struct {
	Actor Actor
	// User is the user's name; "" for the admin token.
	User    string
	Role    Role
	Bureaus []string
	// Scope is the credential's: a token's own, ScopeWrite for a session or
	// the admin token.
	Scope Scope
	// Session: signed in with a session (pages), not a token (API).
	Session bool
}

// AdminTokenPrincipal is CONSULT_ADMIN_TOKEN: an admin, who may act for any
// bureau, recorded as its own actor.
func AdminTokenPrincipal() Principal {
	return Principal{Actor: ActorAdminToken, Role: RoleAdmin, Scope: ScopeWrite}
}

// UserPrincipal is u acting with a credential of the given scope.
func UserPrincipal(u User, scope Scope, session bool) Principal {
	return Principal{Actor: UserActor(u.Name), User: u.Name, Role: u.Role, Bureaus: u.Bureaus, Scope: scope, Session: session}
}

// May reports whether p may take action a on a draft of the bureau with id
// bureau ("" when the action is on no draft, or the draft's bureau has no
// record yet: then only admins may). The rules:
//   - admins may do everything (and so may the admin token);
//   - a bureau user creates and manages drafts of its own bureaus and reads
//     their comments;
//   - a reviewer reads every draft's comments and changes nothing;
//   - everyone signed in manages their own account (pages only);
//   - a read-scoped token only reads.
func (p Principal) May(a Action, bureau string) bool {
	if p.Role == "" {
		return false
	}
	if p.Scope != ScopeWrite && !slices.Contains(reads, a) {
		return false
	}
	if a == OwnAccount {
		return p.User != ""
	}
	switch p.Role {
	case RoleAdmin:
		return true
	case RoleBureau:
		switch a {
		case CreateDraft, ManageDraft, ReadComments:
			return bureau != "" && slices.Contains(p.Bureaus, bureau)
		}
	case RoleReviewer:
		return a == ReadComments
	}
	return false
}

// MayAny reports whether p may take action a on some draft: an admin on any,
// a bureau user on one of its bureaus'. A route without a draft in its path
// (creating one) checks this first, and the draft's own bureau once it is read.
func (p Principal) MayAny(a Action) bool {
	if p.May(a, "") {
		return true
	}
	for _, b := range p.Bureaus {
		if p.May(a, b) {
			return true
		}
	}
	return false
}
