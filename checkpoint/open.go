package checkpoint

import (
	"fmt"
	"net/url"
	"sort"
	"strings"
	"sync"
)

// Opener opens the storage a URI names. It is registered per scheme.
type Opener func(u *url.URL) (Storage, error)

var (
	openersMu sync.RWMutex
	openers   = map[string]Opener{"file": openFile}
)

// Register makes OpenStorage open URIs with scheme (lower case, without
// "://") through open. Implementations register themselves from an init
// function or their package's setup (hdfs:// in checkpoint/hdfs, s3:// in
// checkpoint/s3; bin/weir imports both). Registering a scheme twice
// replaces the earlier opener.
func Register(scheme string, open Opener) {
	openersMu.Lock()
	defer openersMu.Unlock()
	openers[strings.ToLower(scheme)] = open
}

// OpenStorage opens the storage rooted at uri, for example
// file:///var/lib/weir/checkpoints, hdfs://namenode:8020/weir or
// s3://bucket/weir (when the package of the scheme is linked in). A string
// without "://" is a local path and opens as file://.
func OpenStorage(uri string) (Storage, error) {
	if !strings.Contains(uri, "://") {
		return openLocalPath(uri)
	}
	u, err := url.Parse(uri)
	if err != nil {
		return nil, fmt.Errorf("checkpoint storage %q: %w", uri, err)
	}
	scheme := strings.ToLower(u.Scheme)
	openersMu.RLock()
	open, ok := openers[scheme]
	openersMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("checkpoint storage %q: unknown scheme %q (known: %s)", uri, u.Scheme, strings.Join(schemes(), ", "))
	}
	return open(u)
}

func schemes() []string {
	openersMu.RLock()
	defer openersMu.RUnlock()
	s := make([]string, 0, len(openers))
	for k := range openers {
		s = append(s, k+"://")
	}
	sort.Strings(s)
	return s
}
