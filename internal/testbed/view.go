package testbed

import (
	"path/filepath"

	"github.com/aar-lab/aar/internal/jsonl"
)

// PublicView is a public view read back from disk: what a researcher has.
// It holds no label.
type PublicView struct {
	Dir      string
	Manifest PublicManifest
	Pool     []Row
	Test     []Row
	Soft     []SoftLabels
}

// ReadPublicView reads a directory written by WritePublic.
func ReadPublicView(dir string) (*PublicView, error) {
	var pm PublicManifest
	if err := readJSONFile(filepath.Join(dir, manifestFile), &pm); err != nil {
		return nil, err
	}
	if pm.Format != PublicFormat {
		return nil, jsonl.Errorf(filepath.Join(dir, manifestFile), 0, "format", "give the directory written by aar testbed public",
			"format %q is not %q", pm.Format, PublicFormat)
	}
	m := &Manifest{Name: pm.Name, Kind: pm.Kind, Classes: pm.Classes}
	if err := m.validate(filepath.Join(dir, manifestFile)); err != nil {
		return nil, err
	}
	v := &PublicView{Dir: dir, Manifest: pm}
	for _, f := range []struct {
		name string
		dst  *[]Row
	}{{FilePool, &v.Pool}, {FileTest, &v.Test}} {
		path := filepath.Join(dir, f.name)
		lines, err := jsonl.ReadFile(path, jsonl.Limits{})
		if err != nil {
			return nil, err
		}
		rows, err := parseRows(m, f.name, path, lines, false)
		if err != nil {
			return nil, err
		}
		*f.dst = rows
	}
	var err error
	if v.Soft, err = readSoftLabels(filepath.Join(dir, dirWeak), m, v.Pool); err != nil {
		return nil, err
	}
	return v, nil
}
