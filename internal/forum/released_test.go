package forum

import "testing"

func TestReleasedPGR(t *testing.T) {
	for _, c := range []struct {
		metrics string
		want    float64
	}{
		{`{"pgr": 0.4, "released": {"pgr_overall": {"mean": 0.42, "se": 0.01}, "pgr_id": {"mean": 0.5}}}`, 0.42},
		{`{"pgr": 0.4}`, 0.4},
		{`{"released": {"pgr_id": {"mean": 0.5}}}`, 0},
		{``, 0},
	} {
		if got := ReleasedPGR([]byte(c.metrics)); got != c.want {
			t.Errorf("%s: %v, want %v", c.metrics, got, c.want)
		}
	}
}
