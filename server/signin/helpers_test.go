package signin

import (
	"bytes"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
)

func zapNop() *zap.Logger { return zap.NewNop() }

func containsBytes(b []byte, s string) bool { return bytes.Contains(b, []byte(s)) }

func make32(v byte) []byte { return bytes.Repeat([]byte{v}, 32) }

func counter(t *testing.T, v *prometheus.CounterVec, label string) float64 {
	t.Helper()
	var m dto.Metric
	if err := v.WithLabelValues(label).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
