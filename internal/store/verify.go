package store

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Report is the result of Verify.
type Report struct {
	OK      bool   `json:"ok"`
	Entries int64  `json:"entries"`
	Head    string `json:"head,omitempty"`
	// FirstBad is the first altered or missing entry (0 when OK).
	FirstBad int64  `json:"first_bad,omitempty"`
	Problem  string `json:"problem,omitempty"`
	// Checkpoints is how many signed checkpoints matched the chain.
	Checkpoints int `json:"checkpoints"`
}

// Verify walks the whole ledger, recomputing every hash, and checks every
// checkpoint's signature against the chain. extra, when given, is a
// checkpoint kept outside the lab (aar ledger checkpoint): it proves the
// ledger was not rewritten or truncated since. trusted, when set, is the
// only public key whose signatures count.
func Verify(ctx context.Context, l Ledger, extra *Checkpoint, trusted ed25519.PublicKey) (*Report, error) {
	r := &Report{}
	hashes := map[int64][]byte{}
	cps, err := l.Checkpoints(ctx)
	if err != nil {
		return nil, err
	}
	if extra != nil {
		cps = append(cps, *extra)
	}
	want := map[int64]bool{}
	for _, c := range cps {
		want[c.Seq] = true
	}
	var prev []byte = []byte{}
	expect := int64(1)
	bad := func(seq int64, format string, args ...any) error {
		r.FirstBad, r.Problem = seq, fmt.Sprintf(format, args...)
		return errStop
	}
	err = l.Scan(ctx, 1, func(e Event) error {
		if e.Seq != expect {
			return bad(expect, "entry %d is missing (the next stored entry is %d)", expect, e.Seq)
		}
		if !bytes.Equal(e.Prev, prev) {
			return bad(e.Seq, "entry %d does not chain to entry %d (its previous hash differs)", e.Seq, e.Seq-1)
		}
		if h := ChainHash(e.Seq, e.At, e.Kind, e.Actor, e.Campaign, e.Body, e.Prev); !bytes.Equal(h, e.Hash) {
			return bad(e.Seq, "entry %d was altered (its contents do not hash to its stored hash)", e.Seq)
		}
		if want[e.Seq] {
			hashes[e.Seq] = e.Hash
		}
		prev = e.Hash
		r.Entries = e.Seq
		r.Head = hex.EncodeToString(e.Hash)
		expect++
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return nil, err
	}
	if r.FirstBad != 0 {
		return r, nil
	}
	for _, c := range cps {
		if trusted != nil && !bytes.Equal(c.Pub, trusted) {
			r.FirstBad, r.Problem = c.Seq, fmt.Sprintf("checkpoint at entry %d is signed by an unknown key", c.Seq)
			return r, nil
		}
		if !ed25519.Verify(c.Pub, checkpointMessage(c.Seq, c.Hash), c.Sig) {
			r.FirstBad, r.Problem = c.Seq, fmt.Sprintf("checkpoint at entry %d has a bad signature", c.Seq)
			return r, nil
		}
		h, ok := hashes[c.Seq]
		if !ok {
			r.FirstBad, r.Problem = c.Seq, fmt.Sprintf("entry %d, signed by a checkpoint, is missing (the ledger was truncated to %d entries)", c.Seq, r.Entries)
			return r, nil
		}
		if !bytes.Equal(h, c.Hash) {
			r.FirstBad, r.Problem = c.Seq, fmt.Sprintf("the chain up to entry %d differs from the one the checkpoint signed (rewritten history)", c.Seq)
			return r, nil
		}
		r.Checkpoints++
	}
	r.OK = true
	return r, nil
}

var errStop = errors.New("stop")

func checkpointMessage(seq int64, hash []byte) []byte {
	return []byte(fmt.Sprintf("%s checkpoint %d %x", Format, seq, hash))
}

// Signer signs checkpoints with the lab's ed25519 key.
type Signer struct {
	key ed25519.PrivateKey
}

// LoadOrCreateKey reads the lab's signing key from path (hex seed), making
// one (mode 0600) on first use.
func LoadOrCreateKey(path string) (*Signer, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, err
		}
		if err := os.WriteFile(path, []byte(hex.EncodeToString(priv.Seed())+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("write ledger key: %w", err)
		}
		return &Signer{key: priv}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read ledger key: %w", err)
	}
	seed, err := hex.DecodeString(string(bytes.TrimSpace(b)))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("ledger key %s is damaged: it must hold a %d-byte hex seed", path, ed25519.SeedSize)
	}
	return &Signer{key: ed25519.NewKeyFromSeed(seed)}, nil
}

// Public is the signer's public key.
func (s *Signer) Public() ed25519.PublicKey { return s.key.Public().(ed25519.PublicKey) }

// Checkpoint signs the given head.
func (s *Signer) Checkpoint(head Event, now time.Time) Checkpoint {
	return Checkpoint{Seq: head.Seq, Hash: head.Hash, At: now.UTC(), Pub: s.Public(), Sig: ed25519.Sign(s.key, checkpointMessage(head.Seq, head.Hash))}
}

// ReadCheckpointFile reads a checkpoint saved as JSON.
func ReadCheckpointFile(path string) (*Checkpoint, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var c Checkpoint
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	return &c, nil
}

// Secret is key material derived from the signing key for the lab's other
// keyed functions (feedback dither); it never leaves the lab.
func (s *Signer) Secret() []byte {
	h := sha256.Sum256(append([]byte("aar-lab-secret\x00"), s.key.Seed()...))
	return h[:]
}
