package main

import (
	"context"
	forumsqlite "github.com/aar-lab/aar/internal/forum/sqlite"
	"net"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/aar-lab/aar/internal/lab"
	"github.com/aar-lab/aar/internal/store/sqlite"
)

// buildAar builds the aar binary into a temporary directory.
func buildAar(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "aar")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// importChat imports the study fixture's chat testbed into data and returns
// the directory holding its public view.
func importChat(t *testing.T, data string) string {
	t.Helper()
	if code, _, errs := aar(t, data, "testbed", "import", filepath.Join(fixture, "labeled_data", "chat"), "--name", "chat", "--cache", filepath.Join(fixture, "cache_results")); code != 0 {
		t.Fatal(errs)
	}
	view := filepath.Join(t.TempDir(), "view")
	if code, _, errs := aar(t, data, "testbed", "public", "chat", view); code != 0 {
		t.Fatal(errs)
	}
	return view
}

// newLab opens a SQLite ledger and forum in data and a lab on them; it returns the lab
// and the admin token.
func newLab(t *testing.T, data string) (*lab.Lab, string) {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(data, "lab.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	fs, err := forumsqlite.Open(context.Background(), filepath.Join(data, "lab.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.Close() })
	l, admin, err := lab.New(context.Background(), lab.Config{DataDir: data, Ledger: db, Forum: fs})
	if err != nil {
		t.Fatal(err)
	}
	return l, admin
}

// serveLab serves l on a loopback TCP port (and on sock unless empty) until
// the test ends, and returns the TCP address.
func serveLab(t *testing.T, l *lab.Lab, sock string) net.Addr {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addrc, done := make(chan net.Addr, 1), make(chan error, 1)
	go func() { done <- l.Serve(ctx, "127.0.0.1:0", sock, func(a net.Addr) { addrc <- a }) }()
	select {
	case addr := <-addrc:
		t.Cleanup(func() { cancel(); <-done })
		return addr
	case err := <-done:
		cancel()
		t.Fatalf("the lab did not start: %v", err)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("the lab did not start")
	}
	return nil
}
