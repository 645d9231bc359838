package lab

import (
	"context"
	"fmt"
	"strings"

	"github.com/aar-lab/aar/internal/store"
)

// SessionAdminToken mints an admin token for a process that embeds the lab
// (aar run's supervisor, aar runs on a stopped lab) so it can use the HTTP
// API like any admin; purpose is recorded with it in the ledger. Revoke it
// with RevokeToken when the session ends.
func (l *Lab) SessionAdminToken(ctx context.Context, purpose string) (string, error) {
	purpose = strings.TrimSpace(purpose)
	if purpose == "" || len(purpose) > 200 {
		return "", fmt.Errorf("session admin token: say what it is for (1-200 characters)")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	tok := newToken()
	body := map[string]any{"token_sha256": hashToken(tok), "role": RoleAdmin, "purpose": purpose}
	evs, err := l.append(ctx, store.Input{Kind: evToken, Actor: "admin", Body: body})
	if err != nil {
		return "", err
	}
	l.applyLocked(evs[0])
	return tok, nil
}

// Testbeds lists the testbeds installed in the lab's data directory.
func (l *Lab) Testbeds() ([]string, error) { return l.testbeds.Names() }
