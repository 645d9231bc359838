package baseline_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/aar-lab/aar/internal/baseline"
	"github.com/aar-lab/aar/internal/builtin"
	"github.com/aar-lab/aar/internal/testbed"
)

// BenchmarkExperiment times one full W2S experiment on each committed
// built-in testbed, on one core: load the testbed and its cached features,
// train the vanilla student from one weak seed, predict and score the test
// rows. Installation (weak artifacts, ceilings, the feature cache) is setup
// and not timed. Run it with `make bench` (GOMAXPROCS=1).
func BenchmarkExperiment(b *testing.B) {
	from := "../../testbeds"
	ents, err := os.ReadDir(from)
	if err != nil {
		b.Skip("no committed testbeds")
	}
	store, err := testbed.OpenStore(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range ents {
		if _, err := os.Stat(filepath.Join(from, e.Name(), "testbed.json")); err != nil {
			continue
		}
		name := e.Name()
		if _, err := builtin.Install(context.Background(), store, from, name, builtin.InstallOptions{Seeds: 1, Threads: 1}); err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				tb, err := store.Load(name)
				if err != nil {
					b.Fatal(err)
				}
				p, err := baseline.Prepare(tb)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := p.Run(context.Background(), baseline.Options{Method: "vanilla_w2s", Seeds: []string{"42"}, Threads: 1}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
