package bench

import (
	"testing"

	"github.com/google/pprof/profile"
)

func TestTopFunctions(t *testing.T) {
	fn := func(id uint64, name string) *profile.Function { return &profile.Function{ID: id, Name: name} }
	leaf, mid, root := fn(1, "leaf"), fn(2, "mid"), fn(3, "root")
	loc := func(id uint64, fs ...*profile.Function) *profile.Location {
		l := &profile.Location{ID: id}
		for _, f := range fs {
			l.Line = append(l.Line, profile.Line{Function: f})
		}
		return l
	}
	lLeaf, lMid, lRoot := loc(1, leaf), loc(2, mid), loc(3, root)
	lInlined := loc(4, leaf, mid) // leaf inlined into mid
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		Sample: []*profile.Sample{
			{Location: []*profile.Location{lLeaf, lMid, lRoot}, Value: []int64{1, 10}},
			{Location: []*profile.Location{lMid, lRoot}, Value: []int64{1, 30}},
			{Location: []*profile.Location{lInlined, lRoot}, Value: []int64{1, 15}},
			{Location: []*profile.Location{lRoot, lRoot}, Value: []int64{1, 45}}, // recursion counts once
		},
	}
	top, err := topFunctions(p, "cpu", 2)
	if err != nil {
		t.Fatal(err)
	}
	if top.Total != 100 {
		t.Errorf("total %v, want 100", top.Total)
	}
	want := []TopFunc{{"root", 45, 45}, {"mid", 30, 30}} // leaf: 10 + 15 inlined
	if len(top.Flat) != 2 || top.Flat[0] != want[0] || top.Flat[1] != want[1] {
		t.Errorf("flat %+v, want %+v", top.Flat, want)
	}
	wantCum := []TopFunc{{"root", 100, 100}, {"mid", 55, 55}}
	if len(top.Cum) != 2 || top.Cum[0] != wantCum[0] || top.Cum[1] != wantCum[1] {
		t.Errorf("cum %+v, want %+v", top.Cum, wantCum)
	}
	if _, err := topFunctions(p, "inuse_space", 2); err == nil {
		t.Error("a missing sample type must be an error")
	}
}
