//go:build unix

package snapshot

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestPackRefusesFIFO(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "pipe"), 0o644); err != nil {
		t.Skip("no FIFOs:", err)
	}
	_, _, err := Pack(dir, Limits{})
	if !IsInputError(err) || !strings.Contains(err.Error(), `"pipe": is not a regular file or directory (named pipe)`) {
		t.Fatalf("Pack: %v", err)
	}
}
