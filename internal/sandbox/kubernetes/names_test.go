package kubernetes

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/validate/content"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

func TestNames(t *testing.T) {
	long := strings.Repeat("Very_Long.Name-", 10)
	for _, id := range []string{"a", "camp-alice-0a1b2c3d", "x_y.z", long[:64]} {
		n := sandboxName(id)
		if msgs := validation.IsDNS1123Label(n); len(msgs) > 0 {
			t.Errorf("sandboxName(%q) = %q: %v", id, n, msgs)
		}
	}
	if sandboxName("a_b") == sandboxName("a.b") {
		t.Error("sandbox names collide after sanitizing")
	}
	seen := map[string]bool{}
	for _, camp := range []string{"c1", "c2", long} {
		for _, r := range []string{"alice", "Alice", "a l i c e", "", long} {
			n := workerName(camp, r)
			if msgs := validation.IsDNS1123Label(n); len(msgs) > 0 {
				t.Errorf("workerName(%q, %q) = %q: %v", camp, r, n, msgs)
			}
			if seen[n] {
				t.Errorf("workerName(%q, %q) = %q again", camp, r, n)
			}
			seen[n] = true
		}
	}
	if n := campaignOwnerName(long); len(validation.IsDNS1123Label(n)) > 0 {
		t.Errorf("campaignOwnerName = %q", n)
	}
	for _, v := range []string{"", "-x-", long, "a b/c", "Ünï"} {
		if l := labelValue(v); len(content.IsLabelValue(l)) > 0 {
			t.Errorf("labelValue(%q) = %q", v, l)
		}
	}
	for _, tc := range []struct{ id, camp, want string }{
		{"camp1-alice-0a1b2c3d", "camp1", "alice"},
		{"alice-0a1b2c3d", "", "alice"},
		{"c_2026_x-bob_b-deadbeef", "C 2026 x", "bob_b"},
		{"plain", "", "plain"},
		{"-00000000", "", "researcher"},
	} {
		if got := researcherFromID(tc.id, tc.camp); got != tc.want {
			t.Errorf("researcherFromID(%q, %q) = %q, want %q", tc.id, tc.camp, got, tc.want)
		}
	}
}

func TestTarUpload(t *testing.T) {
	root := t.TempDir()
	write := func(rel, s string, mode os.FileMode) {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), mode); err != nil {
			t.Fatal(err)
		}
	}
	write("a.txt", "A", 0o600)
	write("posts/1/body.md", "hello", 0o644)
	write("bin/run.sh", "#!/bin/sh", 0o700)
	if err := os.Symlink("/etc/passwd", filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	now, err := scanTree(root)
	if err != nil {
		t.Fatal(err)
	}
	files := changed(now, nil)
	if !reflect.DeepEqual(files, []string{"a.txt", "bin/run.sh", "posts/1/body.md"}) {
		t.Fatalf("files %v: want regular files only, sorted", files)
	}
	var buf bytes.Buffer
	if err := writeTar(&buf, root, append(files, "vanished.txt")); err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(&buf)
	var got []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		got = append(got, h.Name+" "+string(rune('0'+h.Mode>>6&7))+string(rune('0'+h.Mode>>3&7))+string(rune('0'+h.Mode&7))+" "+string(body))
	}
	want := []string{"a.txt 644 A", "bin/ 755 ", "bin/run.sh 755 #!/bin/sh", "posts/ 755 ", "posts/1/ 755 ", "posts/1/body.md 644 hello"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("tar\n got %q\nwant %q", got, want)
	}

	// Only new or changed files go next time.
	sent := now
	write("posts/2/body.md", "new", 0o644)
	future := time.Now().Add(time.Hour)
	if err := os.Chtimes(filepath.Join(root, "a.txt"), future, future); err != nil {
		t.Fatal(err)
	}
	now, _ = scanTree(root)
	if got := changed(now, sent); !reflect.DeepEqual(got, []string{"a.txt", "posts/2/body.md"}) {
		t.Fatalf("changed %v", got)
	}
	if n, err := treeSize(root); err != nil || n != int64(len("A")+len("hello")+len("#!/bin/sh")+len("new")) {
		t.Fatalf("treeSize %d %v", n, err)
	}
}

func TestPodResult(t *testing.T) {
	pod := func(phase corev1.PodPhase, term *corev1.ContainerStateTerminated) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "w"}, Status: corev1.PodStatus{Phase: phase}}
		if term != nil {
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: ContainerWorker, State: corev1.ContainerState{Terminated: term}}}
		}
		return p
	}
	if s, err := podResult(pod(corev1.PodSucceeded, &corev1.ContainerStateTerminated{Message: "{}"})); err != nil || string(s) != "{}" {
		t.Errorf("succeeded: %q %v", s, err)
	}
	if s, err := podResult(pod(corev1.PodRunning, &corev1.ContainerStateTerminated{Message: "{}"})); err != nil || string(s) != "{}" {
		t.Errorf("deleted after exit 0: %q %v", s, err)
	}
	p := pod(corev1.PodFailed, &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "Error"})
	p.Status.Reason, p.Status.Message = "DeadlineExceeded", "Pod was active on the node longer than the specified deadline"
	if _, err := podResult(p); err == nil || !strings.Contains(err.Error(), "DeadlineExceeded") || !strings.Contains(err.Error(), "exit code 137") {
		t.Errorf("deadline: %v", err)
	}
	p = pod(corev1.PodFailed, nil)
	p.Status.Reason = "Evicted"
	if _, err := podResult(p); err == nil || !strings.Contains(err.Error(), "Evicted") {
		t.Errorf("evicted: %v", err)
	}
}

func TestCopyLines(t *testing.T) {
	var out bytes.Buffer
	var last time.Time
	in := "2026-11-29T10:00:00.1Z first\n2026-11-29T10:00:00.2Z second\nno timestamp\n2026-11-29T10:00:01Z partial"
	if err := copyLines(strings.NewReader(in), &out, &last); err != nil {
		t.Fatal(err)
	}
	if out.String() != "first\nsecond\nno timestamp\npartial" {
		t.Fatalf("out %q", out.String())
	}
	// A resumed stream from the same second repeats nothing.
	out.Reset()
	again := "2026-11-29T10:00:00.2Z second\n2026-11-29T10:00:01Z partial\n2026-11-29T10:00:01.5Z third\n"
	if err := copyLines(strings.NewReader(again), &out, &last); err != nil {
		t.Fatal(err)
	}
	if out.String() != "third\n" {
		t.Fatalf("resumed %q", out.String())
	}
}
