// Package nexmark generates the events of the Nexmark benchmark: people,
// auctions and bids of an online auction house, after the reference
// generators (Apache Beam's and the nexmark/nexmark project's
// NexmarkGenerator and GeneratorConfig).
//
// Event n is a function of the seed and n alone, as in the reference, which
// seeds a fresh random source with each event's id: any subset of event
// numbers can be generated in any order, so parallel subtasks split the
// numbers between them and a restore resumes at any number. What is kept
// from the reference:
//
//   - Of every 50 consecutive events, 1 is a person, 3 are auctions and 46
//     are bids (2 % / 6 % / 92 %), in that order.
//   - Ids are dense: person and auction ids count the people and auctions
//     generated so far, from 1000. Auctions and bids refer to people and
//     auctions that exist, or a few (10) ahead, among the most recent
//     ActivePeople people and InFlightAuctions auctions.
//   - Hot keys: (HotAuctionRatio−1) in HotAuctionRatio bids go to a hot
//     auction (one in every 100), (HotBidderRatio−1) in HotBidderRatio to
//     a hot bidder and (HotSellerRatio−1) in HotSellerRatio auctions to a
//     hot seller (one in every 100 people); half the bids come from one of
//     four hot channels.
//   - Event time: event n happens at Start + n / EventRate seconds; an
//     auction expires a random time within twice the time it takes
//     InFlightAuctions more auctions to be created.
//   - Each event carries an extra field of padding so that the events of a
//     kind average AvgPersonSize, AvgAuctionSize and AvgBidSize bytes
//     (fields counted as the reference counts them: 8 bytes a number).
//
// What differs: the random source (splitmix64 instead of java.util.Random),
// so the values are not the reference's; and random strings are cut from a
// fixed pool of random text rather than drawn letter by letter, which keeps
// their lengths and alphabet and makes a bid cost no allocation for them.
package nexmark

import (
	"math"
	"strconv"
	"sync"
)

// Proportions of the event kinds in every ProportionDenominator events.
const (
	PersonProportion      = 1
	AuctionProportion     = 3
	BidProportion         = 46
	ProportionDenominator = PersonProportion + AuctionProportion + BidProportion
)

// Ids and categories start here, as in the reference.
const (
	FirstPersonID   = 1000
	FirstAuctionID  = 1000
	FirstCategoryID = 10
	NumCategories   = 5
)

// Defaults of Config.
const (
	DefaultStart            int64 = 1767225600000 // 2026-01-01T00:00:00Z
	DefaultEventRate              = 10000.0
	DefaultAvgPersonSize          = 200
	DefaultAvgAuctionSize         = 500
	DefaultAvgBidSize             = 100
	DefaultHotAuctionRatio        = 2
	DefaultHotSellerRatio         = 4
	DefaultHotBidderRatio         = 4
	DefaultActivePeople           = 1000
	DefaultInFlightAuctions       = 100
)

const (
	// hotAuctionEvery, hotPersonEvery: one auction, one person in this
	// many is hot.
	hotAuctionEvery = 100
	hotPersonEvery  = 100
	// idLead lets a bid or auction name a person or auction a little ahead
	// of the newest one, as the reference does.
	personIDLead  = 10
	auctionIDLead = 10
	numChannels   = 10000
	hotChannels   = 2 // one in this many bids uses a hot channel
)

// Config shapes the stream. The zero value of a field means its default.
type Config struct {
	Seed int64
	// Start is the event time of event 0, epoch milliseconds.
	Start int64
	// EventRate is events per second of event time.
	EventRate float64
	// AvgPersonSize, AvgAuctionSize and AvgBidSize are the average sizes
	// in bytes the extra field pads each kind to (1: no padding).
	AvgPersonSize, AvgAuctionSize, AvgBidSize int
	// HotAuctionRatio, HotSellerRatio and HotBidderRatio: all but one in
	// this many bids (auctions) go to a hot auction, seller or bidder
	// (1: no hot keys).
	HotAuctionRatio, HotSellerRatio, HotBidderRatio int
	// ActivePeople is how many of the newest people auctions and bids
	// choose from; InFlightAuctions how many of the newest auctions bids
	// choose from and how long auctions last.
	ActivePeople, InFlightAuctions int
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	setInt := func(p *int, d int) {
		if *p <= 0 {
			*p = d
		}
	}
	if c.Start == 0 {
		c.Start = DefaultStart
	}
	if !(c.EventRate > 0) || math.IsInf(c.EventRate, 0) {
		c.EventRate = DefaultEventRate
	}
	setInt(&c.AvgPersonSize, DefaultAvgPersonSize)
	setInt(&c.AvgAuctionSize, DefaultAvgAuctionSize)
	setInt(&c.AvgBidSize, DefaultAvgBidSize)
	setInt(&c.HotAuctionRatio, DefaultHotAuctionRatio)
	setInt(&c.HotSellerRatio, DefaultHotSellerRatio)
	setInt(&c.HotBidderRatio, DefaultHotBidderRatio)
	setInt(&c.ActivePeople, DefaultActivePeople)
	setInt(&c.InFlightAuctions, DefaultInFlightAuctions)
	return c
}

// Kind is the kind of an event.
type Kind uint8

// Event kinds.
const (
	KindPerson Kind = iota
	KindAuction
	KindBid
)

func (k Kind) String() string {
	switch k {
	case KindPerson:
		return "person"
	case KindAuction:
		return "auction"
	}
	return "bid"
}

// KindOf returns the kind of event n.
func KindOf(n int64) Kind {
	switch r := n % ProportionDenominator; {
	case r < PersonProportion:
		return KindPerson
	case r < PersonProportion+AuctionProportion:
		return KindAuction
	}
	return KindBid
}

// Person is a new user of the auction house.
type Person struct {
	ID           int64
	Name         string
	EmailAddress string
	CreditCard   string
	City         string
	State        string
	DateTime     int64
	Extra        string
}

// Auction is an item put up for auction.
type Auction struct {
	ID          int64
	ItemName    string
	Description string
	InitialBid  int64
	Reserve     int64
	DateTime    int64
	Expires     int64
	Seller      int64
	Category    int64
	Extra       string
}

// Bid is a bid on an auction.
type Bid struct {
	Auction  int64
	Bidder   int64
	Price    int64
	Channel  string
	URL      string
	DateTime int64
	Extra    string
}

// Generator generates events; it is cheap and not safe for concurrent
// use (each subtask has its own).
type Generator struct {
	cfg     Config
	delayUs float64 // event time between events
	rng     rng
}

// New returns the generator of cfg (defaults applied).
func New(cfg Config) *Generator {
	cfg = cfg.WithDefaults()
	return &Generator{cfg: cfg, delayUs: 1e6 / cfg.EventRate}
}

// Config returns the generator's configuration, defaults applied.
func (g *Generator) Config() Config { return g.cfg }

// Time returns the event time of event n, epoch milliseconds.
func (g *Generator) Time(n int64) int64 {
	return g.cfg.Start + int64(float64(n)*g.delayUs/1000)
}

// seed starts event n's random draws: a function of the seed and n only.
func (g *Generator) seed(n int64) {
	g.rng = rng(mix64(uint64(g.cfg.Seed)^0x6e65786d61726b) ^ mix64(uint64(n)))
}

// Person returns event n as a person; n should be a person's number.
func (g *Generator) Person(n int64) Person {
	g.seed(n)
	r := &g.rng
	p := Person{
		ID:       lastPersonID(n) + FirstPersonID,
		Name:     firstNames[r.intn(len(firstNames))] + " " + lastNames[r.intn(len(lastNames))],
		DateTime: g.Time(n),
	}
	p.EmailAddress = r.str(7) + "@" + r.str(5) + ".com"
	var cc [19]byte
	for i := range 4 {
		v := r.intn(10000)
		b := cc[i*5:]
		b[0], b[1], b[2], b[3] = byte('0'+v/1000), byte('0'+v/100%10), byte('0'+v/10%10), byte('0'+v%10)
		if i < 3 {
			b[4] = ' '
		}
	}
	p.CreditCard = string(cc[:])
	p.City = cities[r.intn(len(cities))]
	p.State = states[r.intn(len(states))]
	size := 8 + len(p.Name) + len(p.EmailAddress) + len(p.CreditCard) + len(p.City) + len(p.State)
	p.Extra = r.extra(size, g.cfg.AvgPersonSize)
	return p
}

// Auction returns event n as an auction; n should be an auction's number.
func (g *Generator) Auction(n int64) Auction {
	g.seed(n)
	r := &g.rng
	a := Auction{ID: lastAuctionID(n) + FirstAuctionID, DateTime: g.Time(n)}
	if r.intn(g.cfg.HotSellerRatio) > 0 {
		a.Seller = lastPersonID(n) / hotPersonEvery * hotPersonEvery
	} else {
		a.Seller = g.nextPersonID(n)
	}
	a.Seller += FirstPersonID
	a.Category = FirstCategoryID + int64(r.intn(NumCategories))
	a.InitialBid = r.price()
	// An auction lasts up to twice the event time in which
	// InFlightAuctions more auctions appear, so about that many are open.
	horizon := g.Time(n+int64(g.cfg.InFlightAuctions)*ProportionDenominator/AuctionProportion) - a.DateTime
	a.Expires = a.DateTime + 1 + r.int63n(max(horizon*2, 1))
	a.ItemName = r.str(20)
	a.Description = r.str(100)
	a.Reserve = a.InitialBid + r.price()
	a.Extra = r.extra(8+len(a.ItemName)+len(a.Description)+5*8, g.cfg.AvgAuctionSize)
	return a
}

// Bid returns event n as a bid; n should be a bid's number.
func (g *Generator) Bid(n int64) Bid {
	g.seed(n)
	r := &g.rng
	b := Bid{DateTime: g.Time(n)}
	if r.intn(g.cfg.HotAuctionRatio) > 0 {
		b.Auction = lastAuctionID(n) / hotAuctionEvery * hotAuctionEvery
	} else {
		b.Auction = g.nextAuctionID(n)
	}
	b.Auction += FirstAuctionID
	if r.intn(g.cfg.HotBidderRatio) > 0 {
		// +1 so that hot bidders are not the hot sellers.
		b.Bidder = lastPersonID(n)/hotPersonEvery*hotPersonEvery + 1
	} else {
		b.Bidder = g.nextPersonID(n)
	}
	b.Bidder += FirstPersonID
	b.Price = r.price()
	chans := channelTable()
	if r.intn(hotChannels) > 0 {
		c := &chans.hot[r.intn(len(chans.hot))]
		b.Channel, b.URL = c.name, c.url
	} else {
		c := &chans.all[r.intn(numChannels)]
		b.Channel, b.URL = c.name, c.url
	}
	b.Extra = r.extra(4*8, g.cfg.AvgBidSize)
	return b
}

// lastPersonID is the base-0 id of the newest person at or before event n.
func lastPersonID(n int64) int64 {
	epoch, off := n/ProportionDenominator, n%ProportionDenominator
	if off >= PersonProportion {
		off = PersonProportion - 1
	}
	return epoch*PersonProportion + off
}

// lastAuctionID is the base-0 id of the newest auction at or before event
// n (-1 before the first one).
func lastAuctionID(n int64) int64 {
	epoch, off := n/ProportionDenominator, n%ProportionDenominator
	switch {
	case off < PersonProportion:
		epoch--
		off = AuctionProportion - 1
	case off >= PersonProportion+AuctionProportion:
		off = AuctionProportion - 1
	default:
		off -= PersonProportion
	}
	return epoch*AuctionProportion + off
}

// nextPersonID picks a base-0 person id among the active people at event
// n, or slightly ahead of the newest.
func (g *Generator) nextPersonID(n int64) int64 {
	people := lastPersonID(n) + 1
	active := min(people, int64(g.cfg.ActivePeople))
	return people - active + g.rng.int63n(active+personIDLead)
}

// nextAuctionID picks a base-0 auction id among the in-flight auctions at
// event n, or slightly ahead of the newest.
func (g *Generator) nextAuctionID(n int64) int64 {
	last := lastAuctionID(n)
	lo := max(last-int64(g.cfg.InFlightAuctions), 0)
	return lo + g.rng.int63n(last-lo+1+auctionIDLead)
}

var (
	firstNames = []string{"Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter"}
	lastNames  = []string{"Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris"}
	states     = []string{"AZ", "CA", "ID", "OR", "WA", "WY"}
	cities     = []string{"Phoenix", "Los Angeles", "San Francisco", "Boise", "Portland", "Bend", "Redmond", "Seattle", "Kent", "Cheyenne"}
	hotNames   = []string{"Google", "Facebook", "Baidu", "Apple"}
)

// textPool is random text (letters, a space in about 13 characters) that
// random strings are cut from; it depends on no seed, so every generator
// shares it.
const textPoolSize = 1 << 16

var textPool = func() string {
	r := rng(mix64(0x706f6f6c))
	b := make([]byte, textPoolSize)
	for i := range b {
		if r.intn(13) == 0 {
			b[i] = ' '
		} else {
			b[i] = byte('a' + r.intn(26))
		}
	}
	return string(b)
}()

type channel struct{ name, url string }

type channels struct {
	hot []channel
	all []channel
}

var (
	chanOnce  sync.Once
	chanTable *channels
)

// channelTable builds the channels and their URLs once: bids draw from
// them, as the reference draws from its cache.
func channelTable() *channels {
	chanOnce.Do(func() {
		r := rng(mix64(0x6368616e))
		c := &channels{all: make([]channel, numChannels)}
		for _, n := range hotNames {
			c.hot = append(c.hot, channel{n, r.baseURL()})
		}
		for i := range c.all {
			u := r.baseURL()
			if r.intn(10) > 0 {
				u += "&channel_id=" + strconv.FormatInt(int64(reverse32(int32(i))), 10)
			}
			c.all[i] = channel{"channel-" + strconv.Itoa(i), u}
		}
		chanTable = c
	})
	return chanTable
}

// reverse32 is Java's Math.abs(Integer.reverse(i)).
func reverse32(i int32) int32 {
	var v uint32
	u := uint32(i)
	for range 32 {
		v = v<<1 | u&1
		u >>= 1
	}
	x := int32(v)
	if x < 0 && x != math.MinInt32 {
		x = -x
	}
	return x
}

// rng is splitmix64: one word of state, a good mix, no allocation.
type rng uint64

func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func (r *rng) next() uint64 {
	*r += 0x9e3779b97f4a7c15
	return mix64(uint64(*r))
}

// int63n returns a value in [0, n) for n > 0; the modulo bias is below
// 2^-40 for the bounds used here.
func (r *rng) int63n(n int64) int64 { return int64(r.next() % uint64(n)) }

func (r *rng) intn(n int) int { return int(r.next() % uint64(n)) }

func (r *rng) float64() float64 { return float64(r.next()>>11) / (1 << 53) }

// price is in cents, log-uniform between $0.01 and $10 000.
// (10^x as e^(x ln 10): math.Pow costs twice as much.)
func (r *rng) price() int64 { return int64(math.Round(math.Exp(r.float64()*6*math.Ln10) * 100)) }

// str is a random string of 3 to maxLen−1 characters.
func (r *rng) str(maxLen int) string { return r.exact(3 + r.intn(maxLen-3)) }

// exact is a random string of n characters.
func (r *rng) exact(n int) string {
	if n <= 0 {
		return ""
	}
	n = min(n, textPoolSize)
	at := r.intn(textPoolSize - n + 1)
	return textPool[at : at+n]
}

// extra pads an event of size bytes towards avg: a string of avg−size
// bytes ± 20 %, none when the event is already that large.
func (r *rng) extra(size, avg int) string {
	if size > avg {
		return ""
	}
	want := avg - size
	delta := int(math.Round(float64(want) * 0.2))
	n := want - delta
	if delta > 0 {
		n += r.intn(2 * delta)
	}
	return r.exact(n)
}

// baseURL is a random item URL like the reference's.
func (r *rng) baseURL() string {
	return "https://www.nexmark.com/" + underscored(r.str(5)) + "/" + underscored(r.str(5)) + "/" +
		underscored(r.str(5)) + "/item.htm?query=1"
}

// underscored writes the spaces of s as underscores, as URLs have none.
func underscored(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c == ' ' {
			b[i] = '_'
		}
	}
	return string(b)
}
