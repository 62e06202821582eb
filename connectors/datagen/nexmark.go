package datagen

import (
	"github.com/weir-stream/weir/connectors/nexmark"
	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/spec"
)

// The profile nexmark's records are flat, one shape per event type, with
// the field names of the Nexmark queries: a spec filters on event_type
// and then reads the fields of that type directly (price, not bid.price),
// and a record carries only its own type's fields.
var (
	personShape = dataflow.MustShape("event_type", "id", "name", "email_address", "credit_card",
		"city", "state", "date_time", "extra")
	auctionShape = dataflow.MustShape("event_type", "id", "item_name", "description", "initial_bid",
		"reserve", "date_time", "expires", "seller", "category", "extra")
	bidShape = dataflow.MustShape("event_type", "auction", "bidder", "price", "channel", "url",
		"date_time", "extra")
	personType, auctionType, bidType any = "person", "auction", "bid"
)

func nexmarkConfig(d *spec.DatagenSource) nexmark.Config {
	c := nexmark.Config{Seed: d.Seed, EventRate: d.Rate}
	if n := d.Nexmark; n != nil {
		if n.EventRate > 0 {
			c.EventRate = n.EventRate
		}
		c.AvgPersonSize, c.AvgAuctionSize, c.AvgBidSize = n.AvgPersonSize, n.AvgAuctionSize, n.AvgBidSize
		c.HotAuctionRatio, c.HotSellerRatio, c.HotBidderRatio = n.HotAuctionRatio, n.HotSellerRatio, n.HotBidderRatio
		c.ActivePeople, c.InFlightAuctions = n.ActivePeople, n.InFlightAuctions
	}
	return c
}

// nexmarkGen builds the profile's records. Boxing an int64 into a record
// costs an allocation; date_time repeats over the events of a millisecond
// and hot auctions and bidders repeat from bid to bid, so the last boxes of
// those fields are reused.
type nexmarkGen struct {
	g                     *nexmark.Generator
	dateTime, auc, bidder boxCache
}

// boxCache holds the two most recent boxes of one field.
type boxCache struct {
	v    [2]int64
	a    [2]any
	next int
}

func (c *boxCache) box(v int64) any {
	for i, a := range c.a {
		if a != nil && c.v[i] == v {
			return a
		}
	}
	i := c.next
	c.next ^= 1
	c.v[i], c.a[i] = v, v
	return c.a[i]
}

// fields is event n as a record, and its date_time.
func (x *nexmarkGen) fields(n int64) (dataflow.Fields, int64) {
	g := x.g
	switch nexmark.KindOf(n) {
	case nexmark.KindPerson:
		p := g.Person(n)
		return dataflow.NewFields(personShape, []any{personType, p.ID, p.Name, p.EmailAddress, p.CreditCard,
			p.City, p.State, x.dateTime.box(p.DateTime), p.Extra}), p.DateTime
	case nexmark.KindAuction:
		a := g.Auction(n)
		return dataflow.NewFields(auctionShape, []any{auctionType, a.ID, a.ItemName, a.Description, a.InitialBid,
			a.Reserve, x.dateTime.box(a.DateTime), a.Expires, a.Seller, a.Category, a.Extra}), a.DateTime
	}
	b := g.Bid(n)
	return dataflow.NewFields(bidShape, []any{bidType, x.auc.box(b.Auction), x.bidder.box(b.Bidder), b.Price,
		b.Channel, b.URL, x.dateTime.box(b.DateTime), b.Extra}), b.DateTime
}
