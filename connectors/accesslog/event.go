package accesslog

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
)

// DefaultStart is the event time of the first event when Config.Start is 0:
// 2026-01-01T00:00:00Z in epoch milliseconds.
const DefaultStart int64 = 1767225600000

// DefaultEventsPerSecond is how fast event time advances when
// Config.EventsPerSecond is 0.
const DefaultEventsPerSecond = 200

// Shape of the log. The verification rules in the package doc depend on
// MaxDisorder staying below the jobs' max_out_of_orderness (5 s) and on
// LateBy being far beyond any watermark lag.
const (
	// NumIPs is the number of distinct client addresses.
	NumIPs = 5000
	// MaxDisorder bounds how far an in-time event is behind the largest
	// event time generated before it, in ms.
	MaxDisorder = 3000
	// LateBy is how far a late event is behind the current event time, in ms.
	LateBy = 10 * 60 * 1000

	zipfS            = 1.2
	disorderPerMille = 50 // 5% of events are out of order
	latePer10k       = 10 // 0.1% of events (after the first 10%) are late
	unboundedLateAt  = 10000
)

// Event is one access-log line.
type Event struct {
	IP     string `json:"ip"`
	Ts     int64  `json:"ts"`
	URL    string `json:"url"`
	Status int    `json:"status"`
	Bytes  int    `json:"bytes"`
}

// AppendJSON appends the event as one JSON object, as json.Marshal would
// write it, without reflection.
func (e Event) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"ip":"`...)
	dst = append(dst, e.IP...) // generated strings need no escaping
	dst = append(dst, `","ts":`...)
	dst = strconv.AppendInt(dst, e.Ts, 10)
	dst = append(dst, `,"url":"`...)
	dst = append(dst, e.URL...)
	dst = append(dst, `","status":`...)
	dst = strconv.AppendInt(dst, int64(e.Status), 10)
	dst = append(dst, `,"bytes":`...)
	dst = strconv.AppendInt(dst, int64(e.Bytes), 10)
	return append(dst, '}')
}

// Config shapes a generated log. The zero value of every field but Events
// picks its default.
type Config struct {
	Seed int64
	// Events is the number of events; 0 means unbounded (Generate then
	// runs until its callback returns an error).
	Events int64
	// Start is the event time of event 0, epoch ms (default DefaultStart).
	Start int64
	// EventsPerSecond is how many events share one second of event time
	// (default 200).
	EventsPerSecond int64
	// Partitions is the number of Kafka partitions (default 1).
	Partitions int32
}

// WithDefaults returns the config with defaults filled in.
func (c Config) WithDefaults() Config {
	if c.Start == 0 {
		c.Start = DefaultStart
	}
	if c.EventsPerSecond == 0 {
		c.EventsPerSecond = DefaultEventsPerSecond
	}
	if c.Partitions == 0 {
		c.Partitions = 1
	}
	return c
}

// Validate reports a config that cannot generate a log.
func (c Config) Validate() error {
	c = c.WithDefaults()
	switch {
	case c.Events < 0:
		return fmt.Errorf("accesslog: events must be >= 0, got %d", c.Events)
	case c.EventsPerSecond < 0:
		return fmt.Errorf("accesslog: events per second must be >= 0, got %d", c.EventsPerSecond)
	case c.Partitions < 0:
		return fmt.Errorf("accesslog: partitions must be >= 0, got %d", c.Partitions)
	}
	return nil
}

// Generator computes event i of a log directly from (seed, i): events can be
// generated in any order and by several goroutines with one Generator each,
// and always come out the same. Not safe for concurrent use.
type Generator struct {
	cfg     Config
	k0, k1  uint64
	rank    []uint16 // Zipf rank -> index into ipTable, permuted by the seed
	lateAt  int64
	pcg     rand.PCG
	partsOf []int32 // ipTable index -> partition
}

// NewGenerator returns a generator for cfg (defaults applied).
func NewGenerator(cfg Config) *Generator {
	cfg = cfg.WithDefaults()
	g := &Generator{cfg: cfg}
	g.k0 = splitmix(uint64(cfg.Seed))
	g.k1 = splitmix(g.k0 ^ 0x9e3779b97f4a7c15)
	// Which addresses are hot depends on the seed.
	r := rand.New(rand.NewPCG(g.k0, g.k1))
	g.rank = make([]uint16, NumIPs)
	for i := range g.rank {
		g.rank[i] = uint16(i)
	}
	r.Shuffle(len(g.rank), func(i, j int) { g.rank[i], g.rank[j] = g.rank[j], g.rank[i] })
	g.lateAt = unboundedLateAt
	if cfg.Events > 0 {
		g.lateAt = cfg.Events / 10
	}
	parts := max(cfg.Partitions, 1)
	g.partsOf = make([]int32, NumIPs)
	for i := range g.partsOf {
		g.partsOf[i] = int32(ipHash[i] % uint32(parts))
	}
	return g
}

// Config returns the generator's config with defaults applied.
func (g *Generator) Config() Config { return g.cfg }

// At returns event i, its partition, and whether it is late (10 minutes
// behind; a correct job drops it).
func (g *Generator) At(i int64) (e Event, partition int32, late bool) {
	ip, url, status, bytes, ts, late := g.at(i)
	return Event{IP: ipTable[ip], Ts: ts, URL: urlTable[url], Status: status, Bytes: bytes}, g.partsOf[ip], late
}

// at returns table indexes so that callers building records can use
// pre-boxed values.
func (g *Generator) at(i int64) (ip, url, status, bytes int, ts int64, late bool) {
	g.pcg.Seed(splitmix(uint64(i)^g.k0), splitmix(uint64(i)+g.k1))
	r1, r2, r3 := g.pcg.Uint64(), g.pcg.Uint64(), g.pcg.Uint64()

	u := float64(r1>>11) * (1.0 / (1 << 53))
	ip = int(g.rank[zipfRank(u)])

	// URLs are skewed towards the front of the table.
	uu := float64(r2&0xffffff) / (1 << 24)
	url = int(uu * uu * uu * float64(len(urlTable)))
	switch s := (r2 >> 24) % 1000; {
	case s < 50:
		status = 404
	case s < 60:
		status = 500
	case s < 100:
		status = 304
	case s < 110:
		status = 301
	default:
		status = 200
	}
	bytes = 100 + int((r2>>40)%9901)

	ts = g.cfg.Start + i*1000/g.cfg.EventsPerSecond
	if i >= g.lateAt && r3%10000 < latePer10k {
		return ip, url, status, bytes, ts - LateBy, true
	}
	if (r3>>16)%1000 < disorderPerMille {
		ts -= 1 + int64((r3>>32)%MaxDisorder)
	}
	return ip, url, status, bytes, ts, false
}

// Generate calls fn for every event of the log, in index order. It stops at
// the first error fn returns and returns it. With cfg.Events 0 it runs until
// fn returns an error.
func Generate(cfg Config, fn func(i int64, partition int32, e Event) error) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	g := NewGenerator(cfg)
	for i := int64(0); cfg.Events == 0 || i < cfg.Events; i++ {
		e, p, _ := g.At(i)
		if err := fn(i, p, e); err != nil {
			return err
		}
	}
	return nil
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// zipfRank returns the Zipf rank of u in [0, 1): the first k with
// zipfCDF[k] >= u. A guide table narrows the binary search to the ranks
// whose CDF crosses u's 1/zipfGuideSize of [0, 1); the ranks of the hot
// addresses, most of the draws, are found at once.
func zipfRank(u float64) int {
	j := int(u * zipfGuideSize) // exact: the size is a power of two
	lo, hi := int(zipfGuide[j]), int(zipfGuide[j+1])
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if zipfCDF[m] < u {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

const zipfGuideSize = 4096

// Tables shared by every generator: fixed, so an address always hashes to
// the same partition.
var (
	ipTable  []string
	ipHash   []uint32
	zipfCDF  []float64
	urlTable []string
	// zipfGuide[j] is the first rank whose CDF is at least j/zipfGuideSize.
	zipfGuide [zipfGuideSize + 1]int32
)

func init() { buildTables() }

func buildTables() {
	r := rand.New(rand.NewPCG(20260101, 42))
	seen := map[string]bool{}
	for len(ipTable) < NumIPs {
		ip := strconv.Itoa(1+r.IntN(223)) + "." + strconv.Itoa(r.IntN(256)) + "." +
			strconv.Itoa(r.IntN(256)) + "." + strconv.Itoa(1+r.IntN(254))
		if !seen[ip] {
			seen[ip] = true
			ipTable = append(ipTable, ip)
		}
	}
	ipHash = make([]uint32, NumIPs)
	for i, ip := range ipTable {
		ipHash[i] = fnv32a(ip)
	}
	zipfCDF = make([]float64, NumIPs)
	sum := 0.0
	for k := range NumIPs {
		sum += 1 / math.Pow(float64(k+1), zipfS)
		zipfCDF[k] = sum
	}
	for k := range zipfCDF {
		zipfCDF[k] /= sum
	}
	zipfCDF[NumIPs-1] = 1
	k := 0
	for j := range zipfGuide {
		for zipfCDF[k] < float64(j)/zipfGuideSize {
			k++
		}
		zipfGuide[j] = int32(k)
	}
	urlTable = []string{"/", "/index.html", "/login", "/logout", "/cart", "/checkout",
		"/search?q=shoes", "/search?q=hats", "/static/app.js", "/static/style.css",
		"/favicon.ico", "/api/v1/health"}
	for n := 1; n <= 120; n++ {
		urlTable = append(urlTable, "/products/"+strconv.Itoa(n))
	}
	for n := 1; n <= 40; n++ {
		urlTable = append(urlTable, "/api/v1/orders/"+strconv.Itoa(1000+n))
	}
}

// Partition returns the partition of an address among n partitions: a stable
// FNV-1a hash, the same in every process and run.
func Partition(ip string, n int32) int32 {
	return int32(fnv32a(ip) % uint32(max(n, 1)))
}

func fnv32a(s string) uint32 {
	h := uint32(2166136261)
	for j := 0; j < len(s); j++ {
		h ^= uint32(s[j])
		h *= 16777619
	}
	return h
}

// Raw is an event by table index (IPs, URLs), for callers that build values
// once per address and URL instead of once per event.
type Raw struct {
	IP, URL       int // indexes into IPs() and URLs()
	Status, Bytes int
	Ts            int64
	Partition     int32
	Late          bool
}

// RawAt returns event i as table indexes; IPs()[r.IP] is its address.
func (g *Generator) RawAt(i int64) Raw {
	ip, url, status, bytes, ts, late := g.at(i)
	return Raw{IP: ip, URL: url, Status: status, Bytes: bytes, Ts: ts, Partition: g.partsOf[ip], Late: late}
}

// IPs returns a copy of the address table.
func IPs() []string { return slices.Clone(ipTable) }

// URLs returns a copy of the URL table.
func URLs() []string { return slices.Clone(urlTable) }
