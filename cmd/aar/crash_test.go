package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aar-lab/aar/internal/jsonl"
	"github.com/aar-lab/aar/internal/store"
	"github.com/aar-lab/aar/internal/store/sqlite"
)

// startLab runs `aar lab` as a child process on a random port and returns
// its URL and, on first start, the admin token.
func startLab(t *testing.T, bin, data string) (*exec.Cmd, string, string) {
	t.Helper()
	cmd := exec.Command(bin, "--data", data, "lab", "--addr", "127.0.0.1:0", "--checkpoint-every", "7")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(out)
	var admin, url string
	re := regexp.MustCompile(`listening on (http://\S+)`)
	deadline := time.After(20 * time.Second)
	lines := make(chan string)
	go func() {
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	for url == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("the lab exited before listening")
			}
			if strings.HasPrefix(l, "aar_") {
				admin = l
			}
			if m := re.FindStringSubmatch(l); m != nil {
				url = m[1]
			}
		case <-deadline:
			t.Fatal("the lab did not start")
		}
	}
	go func() {
		for range lines {
		}
	}()
	return cmd, url, admin
}

func post(url, tok, path string, body any, headers map[string]string) (int, map[string]any, error) {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", url+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	json.Unmarshal(raw, &out)
	return resp.StatusCode, out, nil
}

// TestLabSurvivesKill9 submits from several clients, kills the lab with
// SIGKILL mid-stream, restarts it and checks that every submission
// acknowledged with 2xx is there exactly once and the ledger verifies.
func TestLabSurvivesKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a child lab process")
	}
	bin := buildAar(t)
	data := t.TempDir()
	view := importChat(t, data)
	lines, err := jsonl.ReadFile(filepath.Join(view, "test.jsonl"), jsonl.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	n := len(lines)

	cmd, url, admin := startLab(t, bin, data)
	if code, out, err := post(url, admin, "/v1/campaigns", map[string]any{"id": "c1", "testbed": "chat", "quota": map[string]int{"per_researcher_per_hour": 100000, "per_campaign_per_hour": 100000}}, nil); err != nil || code != 201 {
		t.Fatalf("campaign: %d %v %v", code, out, err)
	}
	_, tokOut, _ := post(url, admin, "/v1/tokens", map[string]string{"researcher": "r1", "campaign": "c1"}, nil)
	tok := tokOut["token"].(string)

	var (
		mu    sync.Mutex
		acked = map[string]string{} // idempotency key → submission id
		wg    sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(context.Background())
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				preds := make([]int, n)
				for j := range preds {
					preds[j] = (j*(w+3) + i) % 2
				}
				key := fmt.Sprintf("w%d-%d", w, i)
				code, out, err := post(url, tok, "/v1/submissions", map[string]any{"predictions": preds}, map[string]string{"Idempotency-Key": key})
				if err != nil {
					return
				}
				if code == 201 {
					mu.Lock()
					acked[key] = out["id"].(string)
					mu.Unlock()
				}
			}
		}()
	}
	for {
		mu.Lock()
		k := len(acked)
		mu.Unlock()
		if k >= 60 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	cmd.Process.Kill() // SIGKILL, mid-stream
	cmd.Wait()
	cancel()
	wg.Wait()

	_, url, again := startLab(t, bin, data)
	if again != "" {
		t.Fatal("a restart printed a new admin token")
	}
	db, err := sqlite.Open(context.Background(), filepath.Join(data, "lab.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	count := map[string]int{}
	db.Scan(context.Background(), 1, func(e store.Event) error {
		if e.Kind == "submission.accepted" {
			var s struct{ ID string }
			json.Unmarshal(e.Body, &s)
			count[s.ID]++
		}
		return nil
	})
	for key, id := range acked {
		if count[id] != 1 {
			t.Errorf("acknowledged submission %s (%s) is stored %d times", id, key, count[id])
		}
		// A retry after the crash returns the stored submission.
		code, out, err := post(url, tok, "/v1/submissions", map[string]any{"predictions": make([]int, n)}, map[string]string{"Idempotency-Key": key})
		if err != nil || code != 200 || out["id"] != id {
			t.Errorf("retry of %s after restart: %d %v %v", key, code, out, err)
		}
	}
	if code, out, errs := aar(t, data, "ledger", "verify"); code != 0 {
		t.Fatalf("ledger verify after kill -9: %d %s %s", code, out, errs)
	}
	t.Logf("%d submissions acknowledged before SIGKILL, %d accepted in the ledger, all present once; ledger verifies", len(acked), len(count))
}
