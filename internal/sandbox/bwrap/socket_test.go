package bwrap

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aar-lab/aar/internal/sandbox"
)

// The lab's Unix socket is the sandbox's one way out: reachable at
// /run/aar/lab.sock (AAR_LAB set), while the same server on TCP is not.
func TestLabSocketOnly(t *testing.T) {
	needBwrap(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "lab.sock")
	uln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(sock, 0o666)
	tln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "lab says hi") })
	go http.Serve(uln, h)
	go http.Serve(tln, h)
	defer uln.Close()
	defer tln.Close()
	b := &Backend{Root: filepath.Join(dir, "sandboxes")}
	s, err := b.Create(context.Background(), sandbox.Spec{ID: "sock", LabSocket: sock})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Destroy(context.Background())
	res, err := s.Exec(context.Background(), sandbox.ExecRequest{Timeout: 30 * time.Second, Shell: fmt.Sprintf(`echo "$AAR_LAB"; python3 -c "
import socket
s = socket.socket(socket.AF_UNIX); s.connect('/run/aar/lab.sock')
s.sendall(b'GET / HTTP/1.0\r\n\r\n'); print(s.recv(4096).decode().split('\r\n\r\n')[-1])
try:
    socket.create_connection(('127.0.0.1', %d), timeout=2); print('tcp reached')
except OSError:
    print('tcp refused')
"`, tln.Addr().(*net.TCPAddr).Port)})
	if err != nil {
		t.Fatal(err)
	}
	out := string(res.Stdout)
	if !strings.Contains(out, "unix:///run/aar/lab.sock") || !strings.Contains(out, "lab says hi") || !strings.Contains(out, "tcp refused") {
		t.Fatalf("socket test: %q %q", out, res.Stderr)
	}
}
