package spec

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestNexmarkSettings(t *testing.T) {
	j := mustParse(t, "name: n\npipeline:\n  - source: {datagen: {nexmark: {avg_bid_size: 1, hot_auction_ratio: 3}}}\n  - sink: {discard: {}}\n")
	g := j.Pipeline[0].Source.Datagen
	if g.Profile != ProfileNexmark || g.Nexmark.AvgBidSize != 1 || g.Nexmark.HotAuctionRatio != 3 {
		t.Fatalf("a nexmark block implies the profile: %+v %+v", g, g.Nexmark)
	}
	mustParse(t, "name: n\npipeline:\n  - source: {datagen: {profile: nexmark, count: 10}}\n  - sink: {discard: {}}\n")
	for _, c := range []struct{ src, want string }{
		{"{profile: sequence, nexmark: {}}", "pipeline[0].source.datagen.nexmark: applies to profile nexmark only"},
		{"{nexmark: {event_rate: -1}}", "pipeline[0].source.datagen.nexmark.event_rate: must be > 0"},
		{"{nexmark: {hot_bidder_ratio: -2}}", "pipeline[0].source.datagen.nexmark.hot_bidder_ratio: must be between 1 and"},
		{"{nexmark: {active_people: 9999999999}}", "pipeline[0].source.datagen.nexmark.active_people: must be between 1 and"},
		{"{nexmark: {avg_bid_size: big}}", "pipeline[0].source.datagen.nexmark.avg_bid_size: want an integer"},
		{"{nexmark: {bids: 3}}", "pipeline[0].source.datagen.nexmark.bids: unknown field"},
	} {
		_, err := Parse([]byte("name: n\npipeline:\n  - source: {datagen: " + c.src + "}\n  - sink: {discard: {}}\n"))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.src, err, c.want)
		}
	}
}

// The Nexmark queries in examples/nexmark validate.
func TestNexmarkExamplesParse(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "examples", "nexmark", "*.yaml"))
	if len(files) < 2 {
		t.Fatalf("want the nexmark example specs, found %v", files)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := ExpandEnv(loadExample(t, filepath.Join("nexmark", filepath.Base(f))), noEnv)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Parse(data); err != nil {
				t.Fatal(err)
			}
		})
	}
}
