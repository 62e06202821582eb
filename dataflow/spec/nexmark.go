package spec

import "math"

// ProfileNexmark is the datagen profile of the Nexmark benchmark's events.
const ProfileNexmark = "nexmark"

// Nexmark shapes the datagen profile nexmark (docs/spec.md); a zero or
// absent field takes its default.
type Nexmark struct {
	// EventRate is events per second of event time (default: the datagen
	// rate when set, else 10000).
	EventRate float64 `yaml:"event_rate,omitempty"`
	// AvgPersonSize, AvgAuctionSize and AvgBidSize are the average sizes
	// in bytes the extra field pads events to (defaults 200, 500, 100;
	// 1: no padding).
	AvgPersonSize  int `yaml:"avg_person_size,omitempty"`
	AvgAuctionSize int `yaml:"avg_auction_size,omitempty"`
	AvgBidSize     int `yaml:"avg_bid_size,omitempty"`
	// HotAuctionRatio, HotSellerRatio, HotBidderRatio: all but one in this
	// many bids (auctions) go to a hot auction, seller or bidder (defaults
	// 2, 4, 4; 1: no hot keys).
	HotAuctionRatio int `yaml:"hot_auction_ratio,omitempty"`
	HotSellerRatio  int `yaml:"hot_seller_ratio,omitempty"`
	HotBidderRatio  int `yaml:"hot_bidder_ratio,omitempty"`
	// ActivePeople is how many of the newest people auctions and bids pick
	// from (default 1000); InFlightAuctions how many of the newest auctions
	// bids pick from (default 100).
	ActivePeople     int `yaml:"active_people,omitempty"`
	InFlightAuctions int `yaml:"in_flight_auctions,omitempty"`
}

// nexmarkLimit bounds the integer settings: far above any useful value,
// low enough that the generator's arithmetic cannot overflow.
const nexmarkLimit = 1 << 30

func (v *validator) nexmark(p string, g *DatagenSource) {
	n := g.Nexmark
	if n == nil {
		return
	}
	if g.Profile != ProfileNexmark {
		v.errorf(p+".nexmark", "applies to profile nexmark only (profile is %q)", g.Profile)
		return
	}
	if n.EventRate < 0 || math.IsNaN(n.EventRate) || math.IsInf(n.EventRate, 0) {
		v.errorf(p+".nexmark.event_rate", "must be > 0 events per second of event time (0: default), got %v", n.EventRate)
	}
	for _, f := range []struct {
		name string
		val  int
	}{
		{"avg_person_size", n.AvgPersonSize}, {"avg_auction_size", n.AvgAuctionSize}, {"avg_bid_size", n.AvgBidSize},
		{"hot_auction_ratio", n.HotAuctionRatio}, {"hot_seller_ratio", n.HotSellerRatio}, {"hot_bidder_ratio", n.HotBidderRatio},
		{"active_people", n.ActivePeople}, {"in_flight_auctions", n.InFlightAuctions},
	} {
		if f.val < 0 || f.val > nexmarkLimit {
			v.errorf(p+".nexmark."+f.name, "must be between 1 and %d (0: default), got %d", nexmarkLimit, f.val)
		}
	}
}
