package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aar-lab/aar/internal/store"
	"github.com/aar-lab/aar/internal/store/sqlite"
)

func TestLedgerCommands(t *testing.T) {
	data := t.TempDir()
	if code, _, errs := aar(t, data, "ledger", "verify"); code != exitFailure || !strings.Contains(errs, "no ledger at") {
		t.Fatalf("verify without a ledger: %d %s", code, errs)
	}
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(data, "lab.db"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := db.Append(ctx, store.Input{Kind: "score", Actor: "r1", Body: map[string]int{"i": i}}); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	cp := filepath.Join(t.TempDir(), "head.json")
	if code, _, errs := aar(t, data, "ledger", "checkpoint", "--out", cp); code != exitOK || !strings.Contains(errs, "signed entry 5") {
		t.Fatalf("checkpoint: %d %s", code, errs)
	}
	code, out, errs := aar(t, data, "ledger", "verify", "--checkpoint", cp)
	if code != exitOK || !strings.Contains(out, "ledger verifies: 5 entries") || !strings.Contains(out, "2 checkpoint(s) matched") {
		t.Fatalf("verify: %d %s %s", code, out, errs)
	}

	db, err = sqlite.Open(ctx, filepath.Join(data, "lab.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Exec(ctx, `UPDATE ledger SET body = '{"i":7}' WHERE seq = 2`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	code, _, errs = aar(t, data, "ledger", "verify", "--checkpoint", cp)
	if code != exitFailure || !strings.Contains(errs, "entry 2 was altered") || !strings.Contains(errs, "first bad entry: 2") {
		t.Fatalf("verify after tampering: %d %s", code, errs)
	}
}
