package s3

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/minio/minio-go/v7/pkg/s3utils"
)

// Environment variables every process that opens s3:// storage reads
// (the coordinator and every worker alike). The endpoint is not part of
// the URI: workers receive locations built by Storage.URI
// (s3://bucket/prefix/job), so an endpoint in a query would be lost on the
// way and a worker would silently talk to another service than its
// coordinator.
const (
	// EnvEndpoint is the S3-compatible endpoint, http(s)://host[:port]
	// (MinIO, Ceph RGW, a cloud provider's S3 API). Default: AWS S3 in the
	// region.
	EnvEndpoint = "WEIR_S3_ENDPOINT"
	// EnvRegion and EnvDefaultRegion name the region (default us-east-1),
	// as the AWS tools read them.
	EnvRegion        = "AWS_REGION"
	EnvDefaultRegion = "AWS_DEFAULT_REGION"
)

// DefaultPartSize is the size of the parts of a multipart upload, and the
// largest file written with one PUT. A writer holds one part in memory.
const DefaultPartSize = 8 << 20

// MinPartSize is S3's smallest part (except the last one).
const MinPartSize = 5 << 20

// Options configure an S3 storage. ParseURI builds them from a URI and the
// environment; New takes them directly.
type Options struct {
	// Bucket holds the checkpoints.
	Bucket string
	// Prefix is the key prefix the storage is rooted at, without leading
	// or trailing slash ("" is the bucket's root).
	Prefix string
	// Endpoint is the service's URL, http(s)://host[:port]; empty: AWS S3
	// (https://s3.<region>.amazonaws.com).
	Endpoint string
	// Region of the bucket (default us-east-1).
	Region string
	// PartSize is the multipart part size (default DefaultPartSize, at
	// least MinPartSize).
	PartSize int64
	// MaxRetries bounds how often one request is retried after a network
	// error or a 5xx answer (default 3). The caller's context bounds the
	// whole call.
	MaxRetries int
}

// ParseURI reads Options from s3://bucket/prefix and the environment
// (EnvEndpoint, EnvRegion). The URI takes no user, password, port or query:
// credentials come from the environment (docs/security.md) and the
// endpoint from EnvEndpoint.
func ParseURI(u *url.URL) (Options, error) {
	var o Options
	if !strings.EqualFold(u.Scheme, "s3") {
		return o, fmt.Errorf("scheme %q, want s3", u.Scheme)
	}
	if u.User != nil {
		return o, errors.New("credentials do not belong in the URI: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment")
	}
	if u.RawQuery != "" || u.ForceQuery {
		return o, fmt.Errorf("s3:// takes no query parameters (got %q): set the endpoint with %s and the region with %s on every coordinator and worker", u.RawQuery, EnvEndpoint, EnvRegion)
	}
	if u.Fragment != "" {
		return o, errors.New("s3:// takes no fragment")
	}
	if u.Opaque != "" {
		return o, errors.New("want s3://bucket/prefix")
	}
	if u.Port() != "" {
		return o, fmt.Errorf("s3://%s: a bucket name has no port; the endpoint comes from %s", u.Host, EnvEndpoint)
	}
	o.Bucket = u.Host
	o.Prefix = u.Path
	o.Endpoint = os.Getenv(EnvEndpoint)
	o.Region = os.Getenv(EnvRegion)
	if o.Region == "" {
		o.Region = os.Getenv(EnvDefaultRegion)
	}
	return o, o.Validate()
}

// Validate checks the options and fills in defaults.
func (o *Options) Validate() error {
	if o.Bucket == "" {
		return errors.New("no bucket: want s3://bucket/prefix")
	}
	if err := s3utils.CheckValidBucketNameStrict(o.Bucket); err != nil {
		return fmt.Errorf("bucket %q: %v", o.Bucket, err)
	}
	p := strings.Trim(o.Prefix, "/")
	if strings.ContainsRune(p, 0) {
		return errors.New("prefix contains a NUL byte")
	}
	if p != "" {
		for _, e := range strings.Split(p, "/") {
			switch e {
			case "":
				return fmt.Errorf("prefix %q: empty path component", o.Prefix)
			case ".", "..":
				return fmt.Errorf("prefix %q: no . or .. components", o.Prefix)
			}
		}
	}
	o.Prefix = path.Clean("/" + p)[1:]
	if o.Endpoint != "" {
		u, err := url.Parse(o.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
			return fmt.Errorf("endpoint %q (%s): want http(s)://host[:port]", o.Endpoint, EnvEndpoint)
		}
		if h := u.Hostname(); !s3utils.IsValidIP(h) && !s3utils.IsValidDomain(h) {
			return fmt.Errorf("endpoint %q (%s): %q is not a host name or IP address", o.Endpoint, EnvEndpoint, h)
		}
		if p := u.Port(); p != "" {
			if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
				return fmt.Errorf("endpoint %q (%s): bad port", o.Endpoint, EnvEndpoint)
			}
		}
	}
	if o.Region == "" {
		o.Region = "us-east-1"
	}
	if o.PartSize == 0 {
		o.PartSize = DefaultPartSize
	}
	if o.PartSize < MinPartSize {
		return fmt.Errorf("part size %d: S3 wants at least %d bytes", o.PartSize, MinPartSize)
	}
	if o.MaxRetries == 0 {
		o.MaxRetries = 3
	}
	return nil
}

// endpoint returns host[:port] and whether to use TLS.
func (o *Options) endpoint() (string, bool) {
	if o.Endpoint == "" {
		return "s3." + o.Region + ".amazonaws.com", true
	}
	u, _ := url.Parse(o.Endpoint) // checked by Validate
	return u.Host, u.Scheme == "https"
}

// endpointURL is the endpoint for messages.
func (o *Options) endpointURL() string {
	host, tls := o.endpoint()
	if tls {
		return "https://" + host
	}
	return "http://" + host
}
