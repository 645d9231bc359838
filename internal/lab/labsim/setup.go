package labsim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/bits"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aar-lab/aar/internal/forum"
	forumpg "github.com/aar-lab/aar/internal/forum/postgres"
	forumsqlite "github.com/aar-lab/aar/internal/forum/sqlite"
	"github.com/aar-lab/aar/internal/lab"
	"github.com/aar-lab/aar/internal/store"
	"github.com/aar-lab/aar/internal/store/postgres"
	"github.com/aar-lab/aar/internal/store/sqlite"
	"github.com/aar-lab/aar/internal/testbed"
)

// testbedName is the synthetic testbed's name.
const testbedName = "sim"

// labEnv is a running lab and what the run must undo.
type labEnv struct {
	dir    string
	ledger *timedLedger
	forum  *timedForum
	lab    *lab.Lab
	server *serverStats
	srv    *http.Server
	tcp    string // http://127.0.0.1:PORT
	socket string
	rows   int          // public test rows
	pg     *pgx.Conn    // the run's own database (StorePostgres)
	undo   []func()     // run by close, last first
	log    *slog.Logger // the run's logger
}

// startLab imports the synthetic testbed, opens the stores and serves the
// lab on loopback TCP and a Unix socket.
func startLab(ctx context.Context, cfg Config) (env *labEnv, err error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	env = &labEnv{dir: cfg.Dir, server: newServerStats(), log: cfg.Logger}
	defer func() {
		if err != nil {
			env.close()
		}
	}()
	if env.dir == "" {
		if env.dir, err = os.MkdirTemp("", "labsim-"); err != nil {
			return env, err
		}
		dir := env.dir
		env.undo = append(env.undo, func() { os.RemoveAll(dir) })
	}
	if env.rows, err = writeTestbed(env.dir, cfg.TestRows, cfg.Seed); err != nil {
		return env, err
	}

	var ledger store.Ledger
	var fs forum.Store
	switch cfg.Store {
	case StoreSQLite:
		path := filepath.Join(env.dir, "lab.db") // ledger and forum in one file, as aar lab keeps them
		db, err := sqlite.Open(ctx, path)
		if err != nil {
			return env, err
		}
		env.undo = append(env.undo, func() { db.Close() })
		f, err := forumsqlite.Open(ctx, path)
		if err != nil {
			return env, err
		}
		env.undo = append(env.undo, func() { f.Close() })
		ledger, fs = db, f
	case StorePostgres:
		u, err := env.freshDatabase(ctx, cfg.PostgresURL)
		if err != nil {
			return env, err
		}
		db, err := postgres.Open(ctx, u)
		if err != nil {
			return env, err
		}
		env.undo = append(env.undo, func() { db.Close() })
		f, err := forumpg.Open(ctx, u)
		if err != nil {
			return env, err
		}
		env.undo = append(env.undo, func() { f.Close() })
		ledger, fs = db, f
	}
	env.ledger, env.forum = &timedLedger{Ledger: ledger}, &timedForum{Store: fs}
	if env.lab, err = newLab(ctx, env.dir, env.ledger, env.forum, cfg.Logger); err != nil {
		return env, err
	}
	return env, env.serve()
}

// serve listens on 127.0.0.1:0 and DIR/lab.sock, as aar lab does.
func (env *labEnv) serve() error {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	env.socket = filepath.Join(env.dir, "lab.sock")
	if len(env.socket) > 100 {
		tcp.Close()
		return fmt.Errorf("labsim: the socket path %s is too long for a Unix socket: use a shorter Dir", env.socket)
	}
	unix, err := net.Listen("unix", env.socket)
	if err != nil {
		tcp.Close()
		return err
	}
	env.tcp = "http://" + tcp.Addr().String()
	env.srv = &http.Server{Handler: env.server.wrap(env.lab.Handler()), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(env.log.Handler(), slog.LevelWarn)}
	for _, ln := range []net.Listener{tcp, unix} {
		go env.srv.Serve(ln)
	}
	srv, l := env.srv, env.lab
	env.undo = append(env.undo, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		if err := l.Checkpoint(context.Background()); err != nil {
			env.log.Error("final checkpoint", "err", err)
		}
	})
	return nil
}

// close undoes startLab, last step first.
func (env *labEnv) close() {
	for i := len(env.undo) - 1; i >= 0; i-- {
		env.undo[i]()
	}
	env.undo = nil
}

// freshDatabase makes an empty database on the server at admin and
// returns its URL; close drops it.
func (env *labEnv) freshDatabase(ctx context.Context, admin string) (string, error) {
	b := make([]byte, 6)
	rand.Read(b)
	name := "aar_labsim_" + hex.EncodeToString(b)
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return "", fmt.Errorf("connect to %s: %w", redact(admin), err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	env.undo = append(env.undo, func() {
		c, err := pgx.Connect(context.Background(), admin)
		if err == nil {
			c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			c.Close(context.Background())
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		return "", err
	}
	u.Path = "/" + name
	if env.pg, err = pgx.Connect(ctx, u.String()); err != nil {
		return "", fmt.Errorf("connect to database %s: %w", name, err)
	}
	pg := env.pg
	env.undo = append(env.undo, func() { pg.Close(context.Background()) })
	return u.String(), nil
}

func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "the PostgreSQL server"
	}
	return p.Redacted()
}

// dbBytes is the size of the store: SQLite's file and its WAL, or the
// PostgreSQL database.
func (env *labEnv) dbBytes(ctx context.Context) int64 {
	if env.pg != nil {
		var n int64
		if err := env.pg.QueryRow(ctx, "SELECT pg_database_size(current_database())").Scan(&n); err != nil {
			return 0
		}
		return n
	}
	var n int64
	for _, suffix := range []string{"", "-wal"} {
		if info, err := os.Stat(filepath.Join(env.dir, "lab.db"+suffix)); err == nil {
			n += info.Size()
		}
	}
	return n
}

func (env *labEnv) snapshotDir() string { return filepath.Join(env.dir, "snapshots") }

// researchers makes the campaigns (quotas off: the loop measures the lab,
// not its rate limits), one token per researcher, and its client.
func (env *labEnv) researchers(ctx context.Context, cfg Config) ([]*researcher, error) {
	unlimited := lab.QuotaSpec{PerResearcherPerHour: 1 << 30, PerCampaignPerHour: 1 << 30}
	campaigns := make([]string, cfg.Campaigns)
	for i := range campaigns {
		campaigns[i] = fmt.Sprintf("sim-%03d", i)
		if _, err := env.lab.CreateCampaign(ctx, lab.Campaign{ID: campaigns[i], Testbed: testbedName, Quota: unlimited}); err != nil {
			return nil, fmt.Errorf("create campaign %s: %w", campaigns[i], err)
		}
	}
	out := make([]*researcher, cfg.Researchers)
	for i := range out {
		name := fmt.Sprintf("r%04d", i)
		tok, err := env.lab.CreateToken(ctx, name, campaigns[i%len(campaigns)])
		if err != nil {
			return nil, fmt.Errorf("token for %s: %w", name, err)
		}
		transport := cfg.Transport
		if transport == TransportBoth {
			transport = []string{TransportTCP, TransportUnix}[i%2]
		}
		out[i] = newResearcher(name, tok, env.client(transport), env.base(transport), env.rows, cfg.Mix,
			mrand.New(mrand.NewPCG(cfg.Seed, uint64(i)+1)))
	}
	return out, nil
}

// client is one researcher's HTTP client: its own transport and
// keep-alive connection, as a worker process has.
func (env *labEnv) client(transport string) *http.Client {
	t := &http.Transport{MaxIdleConnsPerHost: 2, IdleConnTimeout: 90 * time.Second}
	if transport == TransportUnix {
		socket := env.socket
		t.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		}
	}
	return &http.Client{Transport: t, Timeout: 2 * time.Minute}
}

func (env *labEnv) base(transport string) string {
	if transport == TransportUnix {
		return "http://lab"
	}
	return env.tcp
}

// ledgerGrowth reads the events appended after seq: how many of each kind
// and their bodies' bytes, with the appends' timing.
func (env *labEnv) ledgerGrowth(ctx context.Context, after int64, elapsed time.Duration) (LedgerGrowth, error) {
	g := env.ledger.usage(elapsed)
	byKind := map[string]*KindBytes{}
	err := env.ledger.Ledger.Scan(ctx, after+1, func(e store.Event) error {
		k := byKind[e.Kind]
		if k == nil {
			k = &KindBytes{Kind: e.Kind}
			byKind[e.Kind] = k
		}
		k.Events++
		k.Bytes += int64(len(e.Body))
		g.Events++
		g.BodyBytes += int64(len(e.Body))
		return nil
	})
	if err != nil {
		return g, fmt.Errorf("scan the ledger: %w", err)
	}
	for _, k := range byKind {
		g.ByKind = append(g.ByKind, *k)
	}
	sortKindBytes(g.ByKind)
	g.EventsPerSec = float64(g.Events) / elapsed.Seconds()
	g.BytesPerSec = float64(g.BodyBytes) / elapsed.Seconds()
	return g, nil
}

// writeTestbed imports a binary testbed shaped like the study's chat one
// (ID and OOD subsets, per-row weak and ceiling baselines) and returns its
// public test size.
func writeTestbed(dir string, testRows int, seed uint64) (int, error) {
	src, err := os.MkdirTemp("", "labsim-testbed-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(src)
	rng := mrand.New(mrand.NewPCG(seed, 99))
	text := func(prefix string, i int) string {
		return fmt.Sprintf("%s %d: %s", prefix, i, strings.Repeat(words[i%len(words)]+" ", 8+i%5))
	}
	var labelled, pool, test, weak, ceiling strings.Builder
	for i := range 200 {
		fmt.Fprintf(&labelled, `{"text":%q,"label":%d}`+"\n", text("l", i), i%2)
	}
	for i := range 1000 {
		fmt.Fprintf(&pool, `{"text":%q}`+"\n", text("u", i))
	}
	for i := range testRows {
		label := bits.OnesCount(uint(i)) % 2
		subset := "id"
		if i%4 == 3 {
			subset = "ood"
		}
		fmt.Fprintf(&test, `{"text":%q,"label":%d,"subset":%q}`+"\n", text("t", i), label, subset)
		guess := func(acc float64) int {
			if rng.Float64() < acc {
				return label
			}
			return 1 - label
		}
		fmt.Fprintf(&weak, `{"label":%d}`+"\n", guess(0.65))
		fmt.Fprintf(&ceiling, `{"label":%d}`+"\n", guess(0.85))
	}
	files := map[string]string{
		"testbed.json":              `{"kind":"classification","classes":["A","B"],"id_subsets":["id"],"ood_subsets":["ood"]}`,
		"train_label.jsonl":         labelled.String(),
		"train_unlabel.jsonl":       pool.String(),
		"test.jsonl":                test.String(),
		"baselines/weak/1.jsonl":    weak.String(),
		"baselines/ceiling/1.jsonl": ceiling.String(),
	}
	for name, body := range files {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return 0, err
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			return 0, err
		}
	}
	tbs, err := testbed.OpenStore(dir)
	if err != nil {
		return 0, err
	}
	splitSeed := seed
	tb, err := tbs.Import(src, testbed.ImportOptions{Name: testbedName, SplitSeed: &splitSeed})
	if err != nil {
		return 0, fmt.Errorf("import the synthetic testbed: %w", err)
	}
	n := len(tb.PublicTest())
	if n == 0 {
		return 0, errors.New("the synthetic testbed has no public test rows")
	}
	return n, nil
}

// replay opens a second lab over the same stores and times its start: the
// whole ledger is read back into memory, as at every restart.
func (env *labEnv) replay(ctx context.Context) (Replay, error) {
	head, err := env.ledger.Ledger.Head(ctx)
	if err != nil {
		return Replay{}, err
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	l, err := newLab(ctx, env.dir, &timedLedger{Ledger: env.ledger.Ledger}, &timedForum{Store: env.forum.Store}, env.log)
	if err != nil {
		return Replay{}, fmt.Errorf("replay: %w", err)
	}
	d := time.Since(start)
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(l)
	r := Replay{Events: head.Seq, Seconds: d.Seconds(), EventsPerSec: float64(head.Seq) / d.Seconds()}
	if after.HeapAlloc > before.HeapAlloc {
		r.HeapBytes = int64(after.HeapAlloc - before.HeapAlloc)
	}
	return r, nil
}
