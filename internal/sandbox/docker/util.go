package docker

import (
	"encoding/json"
	"io"

	cerrdefs "github.com/containerd/errdefs"
)

func decodeJSON(r io.Reader, v any) error { return json.NewDecoder(r).Decode(v) }

func isNotFound(err error) bool { return cerrdefs.IsNotFound(err) }
