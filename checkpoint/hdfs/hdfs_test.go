package hdfs_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/weir-stream/weir/checkpoint"
	"github.com/weir-stream/weir/checkpoint/hdfs"
	"github.com/weir-stream/weir/checkpoint/storagetest"
	"github.com/weir-stream/weir/internal/hdfstest"
	"github.com/weir-stream/weir/internal/leakcheck"
	checkpointpb "github.com/weir-stream/weir/proto/checkpoint/v1"
)

// TestMain fails the run when a goroutine of the HDFS client, the storage
// or the test server outlives the tests.
func TestMain(m *testing.M) {
	leakcheck.Main(m, "colinmarc/hdfs", "weir/internal/hdfstest", "weir/checkpoint/hdfs")
}

// eventually polls cond until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: "+format, append([]any{timeout}, args...)...)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var roots atomic.Int64

// open opens a fresh hdfs:// storage on srv through checkpoint.OpenStorage,
// as the coordinator and the workers do.
func open(t *testing.T, srv *hdfstest.Server, query string) checkpoint.Storage {
	t.Helper()
	uri := fmt.Sprintf("hdfs://%s/weir/t%d?user=weir", srv.NameNodeAddr(), roots.Add(1))
	if query != "" {
		uri += "&" + query
	}
	st, err := checkpoint.OpenStorage(uri)
	if err != nil {
		t.Fatalf("OpenStorage(%s): %v", uri, err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func noProtocolErrors(t *testing.T, srv *hdfstest.Server) {
	t.Helper()
	if errs := srv.ProtocolErrors(); len(errs) > 0 {
		t.Errorf("the server saw %d protocol errors:\n%s", len(errs), strings.Join(errs, "\n"))
	}
}

func put(t *testing.T, st checkpoint.Storage, p string, data []byte) {
	t.Helper()
	w, err := st.Create(t.Context(), p)
	if err != nil {
		t.Fatalf("Create(%s): %v", p, err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatalf("Write(%s): %v", p, err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close(%s): %v", p, err)
	}
}

func get(t *testing.T, st checkpoint.Storage, p string) []byte {
	t.Helper()
	r, err := st.Open(t.Context(), p)
	if err != nil {
		t.Fatalf("Open(%s): %v", p, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read %s: %v", p, err)
	}
	return b
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>9)
	}
	return b
}

// TestConformance runs the shared storage suite against hdfs:// on the
// test server: real RPC and data transfer through colinmarc/hdfs. Small
// blocks and a small listing page make files cross block boundaries and
// listings page.
func TestConformance(t *testing.T) {
	srv := hdfstest.New(t, hdfstest.Config{BlockSize: 4 << 20, ListingLimit: 4})
	storagetest.Run(t, func(t *testing.T) checkpoint.Storage { return open(t, srv, "") })
	noProtocolErrors(t, srv)
	calls := srv.Calls()
	for _, m := range []string{"getFileInfo", "mkdirs", "getServerDefaults", "create", "addBlock",
		"updateBlockForPipeline", "complete", "getBlockLocations", "rename2", "delete", "getListing"} {
		if calls[m] == 0 {
			t.Errorf("the suite never called %s (calls: %v)", m, calls)
		}
	}
}

func TestOpenStorageRegistersHDFS(t *testing.T) {
	srv := hdfstest.New(t, hdfstest.Config{})
	st := open(t, srv, "")
	if _, ok := st.(*hdfs.Storage); !ok {
		t.Fatalf("OpenStorage(hdfs://...) = %T, want *hdfs.Storage", st)
	}
	if got, want := st.URI("j/chk-1/_metadata"), "hdfs://weir@"+srv.NameNodeAddr()+"/weir/t"; !strings.HasPrefix(got, want) {
		t.Fatalf("URI = %q, want prefix %q", got, want)
	}
}

// TestURIReopens: a location built by URI, opened elsewhere (as a worker
// does with the job directory the coordinator hands it), reaches the same
// files as the same HDFS user, whatever user the opening process runs as.
func TestURIReopens(t *testing.T) {
	srv := hdfstest.New(t, hdfstest.Config{})
	st := open(t, srv, "")
	put(t, st, "job/chk-1/_metadata", []byte("m"))
	t.Setenv("HADOOP_USER_NAME", "somebody-else")
	job, err := checkpoint.OpenStorage(st.URI("job"))
	if err != nil {
		t.Fatal(err)
	}
	defer job.Close()
	if got := get(t, job, "chk-1/_metadata"); string(got) != "m" {
		t.Fatalf("read %q through %s", got, st.URI("job"))
	}
	put(t, job, "chk-1/state", []byte("s"))
	for _, f := range srv.Files() {
		if f.Owner != "weir" {
			t.Fatalf("%s is owned by %q, want weir", f.Path, f.Owner)
		}
	}
	if got, want := job.URI("chk-1/state"), st.URI("job/chk-1/state"); got != want {
		t.Fatalf("URI through the reopened storage %q, want %q", got, want)
	}
}

// TestEnvOptions: WEIR_HDFS_OPTIONS gives defaults to every URI; the URI's
// own parameters win; a typo there is an error too.
func TestEnvOptions(t *testing.T) {
	parse := func(s string) (hdfs.Options, error) {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return hdfs.ParseURI(u)
	}
	t.Setenv(hdfs.EnvOptions, "io_timeout=7s&use_datanode_hostname=true&user=envuser")
	o, err := parse("hdfs://nn/w")
	if err != nil || o.IOTimeout != 7*time.Second || !o.UseDatanodeHostname || o.User != "envuser" {
		t.Fatalf("with env defaults: %+v, %v", o, err)
	}
	o, err = parse("hdfs://weir@nn/w?io_timeout=3s")
	if err != nil || o.IOTimeout != 3*time.Second || o.User != "weir" {
		t.Fatalf("the URI's own options must win: %+v, %v", o, err)
	}
	t.Setenv(hdfs.EnvOptions, "io_timout=7s")
	if _, err := parse("hdfs://nn/w"); err == nil || !strings.Contains(err.Error(), "WEIR_HDFS_OPTIONS") {
		t.Fatalf("a typo in the environment: %v", err)
	}
}

func TestParseURI(t *testing.T) {
	for _, tc := range []struct {
		uri  string
		want hdfs.Options
		err  string
	}{
		{uri: "hdfs://nn:8020/weir", want: hdfs.Options{Namenodes: []string{"nn:8020"}, Root: "/weir", User: "u"}},
		{uri: "hdfs://nn/weir/", want: hdfs.Options{Namenodes: []string{"nn:8020"}, Root: "/weir", User: "u"}},
		{uri: "hdfs://nn1:8020,nn2:9000/w?user=weir", want: hdfs.Options{Namenodes: []string{"nn1:8020", "nn2:9000"}, Root: "/w", User: "weir"}},
		{uri: "hdfs:///w?namenodes=nn1:8020,nn2&user=weir", want: hdfs.Options{Namenodes: []string{"nn1:8020", "nn2:8020"}, Root: "/w", User: "weir"}},
		{uri: "hdfs://bob@nn:1/w", want: hdfs.Options{Namenodes: []string{"nn:1"}, Root: "/w", User: "bob"}},
		{uri: "hdfs://nn:8020?io_timeout=5s&dial_timeout=1s&use_datanode_hostname=true",
			want: hdfs.Options{Namenodes: []string{"nn:8020"}, Root: "/", User: "u", IOTimeout: 5 * time.Second, DialTimeout: time.Second, UseDatanodeHostname: true}},
		{uri: "hdfs://nn:8020/w?kerberos_principal=weir/h@EX.COM&keytab=/k&namenode_spn=nn/_HOST@EX.COM&krb5_conf=/k5",
			want: hdfs.Options{Namenodes: []string{"nn:8020"}, Root: "/w", Kerberos: &hdfs.KerberosOptions{Principal: "weir/h@EX.COM", Keytab: "/k", NamenodeSPN: "nn/_HOST@EX.COM", Krb5Conf: "/k5"}}},
		{uri: "hdfs:///w", err: "no namenode"},
		{uri: "hdfs://nn:8020/w?usr=x", err: `unknown parameter "usr"`},
		{uri: "hdfs://nn:8020/w?namenodes=a:1", err: "namenodes given twice"},
		{uri: "hdfs://nn:99999/w", err: "bad port"},
		{uri: "hdfs://nn:8020/a/../b", err: "no . or .."},
		{uri: "hdfs://nn:8020/w?io_timeout=soon", err: "io_timeout"},
		{uri: "hdfs://nn:8020/w?keytab=/k", err: "kerberos needs both"},
		{uri: "hdfs://nn:8020/w?kerberos_principal=a@B&keytab=/k", err: "namenode_spn"},
		{uri: "hdfs://nn:8020/w?data_transfer_protection=maybe", err: "data_transfer_protection"},
		{uri: "hdfs://a:b@nn:8020/w", err: "password"},
	} {
		t.Run(tc.uri, func(t *testing.T) {
			t.Setenv("HADOOP_USER_NAME", "u")
			u, err := url.Parse(tc.uri)
			if err != nil {
				t.Fatal(err)
			}
			got, err := hdfs.ParseURI(u)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseURI = %v, want an error containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.want.DialTimeout == 0 {
				tc.want.DialTimeout = 10 * time.Second
			}
			if tc.want.IOTimeout == 0 {
				tc.want.IOTimeout = time.Minute
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("ParseURI =\n%+v, want\n%+v", got, tc.want)
			}
		})
	}
}

// TestNameNodeDown: with the namenode down every call fails at once with
// ErrUnavailable naming the namenode; when it is back the same storage
// works again without being reopened, and nothing was lost.
func TestNameNodeDown(t *testing.T) {
	srv := hdfstest.New(t, hdfstest.Config{})
	st := open(t, srv, "dial_timeout=2s")
	put(t, st, "j/chk-1/_metadata", []byte("meta"))

	srv.StopNameNode()
	ctx := t.Context()
	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, checkpoint.ErrUnavailable) {
			t.Fatalf("%s with the namenode down: want ErrUnavailable, got %v", what, err)
		}
		if !strings.Contains(err.Error(), srv.NameNodeAddr()) {
			t.Fatalf("%s: the error does not name the namenode %s: %v", what, srv.NameNodeAddr(), err)
		}
	}
	_, err := st.Stat(ctx, "j/chk-1/_metadata")
	check("Stat", err)
	_, err = st.Create(ctx, "j/chk-2/a")
	check("Create", err)
	_, err = st.Open(ctx, "j/chk-1/_metadata")
	check("Open", err)
	_, err = st.List(ctx, "j")
	check("List", err)
	check("Rename", st.Rename(ctx, "j/chk-1/_metadata", "j/chk-1/x"))
	check("DeleteAll", st.DeleteAll(ctx, "j/chk-1"))
	t.Logf("namenode down: %v", err)

	if err := srv.StartNameNode(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() bool {
		_, err := st.Stat(ctx, "j/chk-1/_metadata")
		return err == nil
	}, "Stat after the namenode came back")
	if got := get(t, st, "j/chk-1/_metadata"); string(got) != "meta" {
		t.Fatalf("after the restart the file holds %q", got)
	}
	put(t, st, "j/chk-2/a", []byte("after"))
	noProtocolErrors(t, srv)
}

// TestNameNodeDiesMidWrite: the namenode goes away while a file is being
// written; the write fails with ErrUnavailable and, once the namenode is
// back, the file is not there as a complete file.
func TestNameNodeDiesMidWrite(t *testing.T) {
	srv := hdfstest.New(t, hdfstest.Config{BlockSize: 256 << 10})
	st := open(t, srv, "dial_timeout=2s")
	w, err := st.Create(t.Context(), "j/chk-1/state")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(pattern(100 << 10)); err != nil {
		t.Fatal(err)
	}
	srv.StopNameNode()
	_, werr := w.Write(pattern(1 << 20)) // crosses blocks: needs addBlock
	cerr := w.Close()
	if werr == nil && cerr == nil {
		t.Fatal("writing and closing succeeded with the namenode down")
	}
	for _, err := range []error{werr, cerr} {
		if err != nil && !errors.Is(err, checkpoint.ErrUnavailable) {
			t.Fatalf("want ErrUnavailable, got %v", err)
		}
	}
	if err := srv.StartNameNode(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() bool {
		_, err := st.List(t.Context(), "")
		return err == nil
	}, "List after the namenode came back")
	for _, f := range srv.Files() {
		if strings.HasSuffix(f.Path, "/j/chk-1/state") && f.Complete {
			t.Fatalf("a partial file was completed: %+v", f)
		}
	}
}

// TestDataNodeDropsMidBlock: the datanode closes the write connection in
// the middle of a block. The write fails cleanly with ErrUnavailable, the
// partial file is removed, and WriteMetadata commits no _metadata; with the
// fault cleared the same commit succeeds.
func TestDataNodeDropsMidBlock(t *testing.T) {
	srv := hdfstest.New(t, hdfstest.Config{})
	st := open(t, srv, "")
	ctx := t.Context()
	srv.SetFaults(hdfstest.Faults{DropWriteAfter: 200 << 10})

	// A state file: the error comes from Write or Close, never silently.
	w, err := st.Create(ctx, "job/chk-1/src-0-map")
	if err != nil {
		t.Fatal(err)
	}
	_, werr := w.Write(pattern(512 << 10))
	cerr := w.Close()
	if werr == nil && cerr == nil {
		t.Fatal("a write through a dropped pipeline succeeded")
	}
	for _, err := range []error{werr, cerr} {
		if err != nil && !errors.Is(err, checkpoint.ErrUnavailable) {
			t.Fatalf("want ErrUnavailable, got %v", err)
		}
	}
	t.Logf("write error: %v; close error: %v", werr, cerr)
	if _, err := st.Stat(ctx, "job/chk-1/src-0-map"); !errors.Is(err, checkpoint.ErrNotFound) {
		t.Fatalf("the partial state file is still there: Stat = %v", err)
	}

	// The metadata commit: big enough to span several packets.
	m := &checkpointpb.Metadata{FormatVersion: 1, JobId: "job", CheckpointId: 1, JobSpec: pattern(600 << 10)}
	err = checkpoint.WriteMetadata(ctx, st, "job/chk-1", m)
	if !errors.Is(err, checkpoint.ErrUnavailable) {
		t.Fatalf("WriteMetadata through a dropped pipeline: want ErrUnavailable, got %v", err)
	}
	for _, p := range []string{"job/chk-1/_metadata", "job/chk-1/_metadata.tmp"} {
		if _, err := st.Stat(ctx, p); !errors.Is(err, checkpoint.ErrNotFound) {
			t.Fatalf("%s after the failed commit: Stat = %v, want ErrNotFound", p, err)
		}
	}
	if ids, err := checkpoint.ListCompleted(ctx, st, "job"); err != nil || len(ids) != 0 {
		t.Fatalf("ListCompleted after the failed commit = %v, %v; want none", ids, err)
	}
	if d := srv.Stats().DroppedWrites; d < 2 {
		t.Fatalf("the datanode dropped %d connections, want at least 2", d)
	}

	srv.SetFaults(hdfstest.Faults{})
	if err := checkpoint.WriteMetadata(ctx, st, "job/chk-1", m); err != nil {
		t.Fatal(err)
	}
	got, err := checkpoint.ReadMetadata(ctx, st, "job/chk-1")
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got, m) {
		t.Fatal("the metadata read back differs")
	}
	if ids, err := checkpoint.ListCompleted(ctx, st, "job"); err != nil || len(ids) != 1 || ids[0] != 1 {
		t.Fatalf("ListCompleted = %v, %v; want [1]", ids, err)
	}
	noProtocolErrors(t, srv)
}

// TestSlowAcks: a datanode that acknowledges slowly slows a write down but
// does not fail it.
func TestSlowAcks(t *testing.T) {
	srv := hdfstest.New(t, hdfstest.Config{BlockSize: 256 << 10})
	st := open(t, srv, "")
	srv.SetFaults(hdfstest.Faults{AckDelay: 15 * time.Millisecond})
	before := srv.Stats().Acks
	data := pattern(700 << 10) // three blocks, a dozen packets
	put(t, st, "j/chk-1/slow", data)
	if got := get(t, st, "j/chk-1/slow"); !bytes.Equal(got, data) {
		t.Fatal("read back differs")
	}
	if n := srv.Stats().Acks - before; n < 12 {
		t.Fatalf("%d acks, want at least 12", n)
	}
	noProtocolErrors(t, srv)
}

// TestNameNodeHangs: a namenode that stops answering fails calls after
// io_timeout instead of blocking them forever.
func TestNameNodeHangs(t *testing.T) {
	srv := hdfstest.New(t, hdfstest.Config{})
	st := open(t, srv, "io_timeout=300ms")
	put(t, st, "f", []byte("x"))
	srv.SetFaults(hdfstest.Faults{RPCDelay: 3 * time.Second})
	_, err := st.Stat(t.Context(), "f")
	if !errors.Is(err, checkpoint.ErrUnavailable) {
		t.Fatalf("Stat on a hung namenode: want ErrUnavailable, got %v", err)
	}
	srv.SetFaults(hdfstest.Faults{})
	eventually(t, 10*time.Second, func() bool {
		_, err := st.Stat(t.Context(), "f")
		return err == nil
	}, "Stat after the namenode answers again")
}

// TestPermissionDenied: AccessControlException is ErrPermission and says
// so.
func TestPermissionDenied(t *testing.T) {
	srv := hdfstest.New(t, hdfstest.Config{})
	st := open(t, srv, "")
	put(t, st, "j/a", []byte("x"))
	srv.SetFaults(hdfstest.Faults{DenyWrite: []string{"/weir"}})
	_, err := st.Create(t.Context(), "j/b")
	if !errors.Is(err, checkpoint.ErrPermission) || !strings.Contains(err.Error(), `HDFS user "weir"`) {
		t.Fatalf("Create under a denied path: want ErrPermission with the namenode's message, got %v", err)
	}
	if err := st.DeleteAll(t.Context(), "j/a"); !errors.Is(err, checkpoint.ErrPermission) {
		t.Fatalf("DeleteAll under a denied path: want ErrPermission, got %v", err)
	}
	if err := st.Rename(t.Context(), "j/a", "j/c"); !errors.Is(err, checkpoint.ErrPermission) {
		t.Fatalf("Rename under a denied path: want ErrPermission, got %v", err)
	}
	if got := get(t, st, "j/a"); string(got) != "x" {
		t.Fatal("reading is still allowed")
	}
}

// TestHANamenodes: with an HA pair whose first namenode is unreachable the
// client fails over to the second.
func TestHANamenodes(t *testing.T) {
	srv := hdfstest.New(t, hdfstest.Config{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	uri := fmt.Sprintf("hdfs://%s,%s/weir/ha?user=weir", dead, srv.NameNodeAddr())
	st, err := checkpoint.OpenStorage(uri)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	put(t, st, "a", []byte("ha"))
	if got := get(t, st, "a"); string(got) != "ha" {
		t.Fatalf("read %q", got)
	}
	// The dead first namenode does not make later errors look like an
	// outage.
	if _, err := st.Stat(t.Context(), "missing"); !errors.Is(err, checkpoint.ErrNotFound) || strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("Stat of a missing file after failover: want a plain ErrNotFound, got %v", err)
	}
	// Both down: unavailable, naming both.
	srv.StopNameNode()
	_, err = st.Stat(t.Context(), "a")
	if !errors.Is(err, checkpoint.ErrUnavailable) || !strings.Contains(err.Error(), dead) {
		t.Fatalf("with both namenodes down: want ErrUnavailable naming %s, got %v", dead, err)
	}
}

// TestStreamsLargeFiles: a write goes out while it is written (the
// datanode holds data before Close) and a read streams it back.
func TestStreamsLargeFiles(t *testing.T) {
	srv := hdfstest.New(t, hdfstest.Config{BlockSize: 1 << 20})
	st := open(t, srv, "")
	w, err := st.Create(t.Context(), "big")
	if err != nil {
		t.Fatal(err)
	}
	chunk := pattern(1 << 20)
	for range 4 {
		if _, err := w.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	// The client renews its lease while the file is open.
	eventually(t, 5*time.Second, func() bool { return srv.Calls()["renewLease"] > 0 }, "a renewLease call")
	// Three blocks are finished and on the datanode before Close.
	var length int64
	for _, f := range srv.Files() {
		if strings.HasSuffix(f.Path, "/big") {
			length = f.Length
		}
	}
	if length < 3<<20 {
		t.Fatalf("before Close the datanode holds %d bytes, want at least 3 MiB: the writer buffers", length)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := st.Open(t.Context(), "big")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	buf := make([]byte, 1<<20)
	for i := range 4 {
		if _, err := io.ReadFull(r, buf); err != nil {
			t.Fatalf("chunk %d: %v", i, err)
		}
		if !bytes.Equal(buf, chunk) {
			t.Fatalf("chunk %d differs", i)
		}
	}
	noProtocolErrors(t, srv)
}

// TestCancelledWriteLeavesNoFile: cancelling the context while writing
// removes the file.
func TestCancelledWriteLeavesNoFile(t *testing.T) {
	srv := hdfstest.New(t, hdfstest.Config{})
	st := open(t, srv, "")
	ctx, cancel := context.WithCancel(t.Context())
	w, err := st.Create(ctx, "c/partial")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(pattern(300 << 10)); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := w.Close(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Close after cancel: want context.Canceled, got %v", err)
	}
	if _, err := st.Stat(t.Context(), "c/partial"); !errors.Is(err, checkpoint.ErrNotFound) {
		t.Fatalf("the cancelled file is still there: %v", err)
	}
}

// FuzzParseURI: any URI string gives options that validate, or an error;
// never a panic.
func FuzzParseURI(f *testing.F) {
	for _, s := range []string{"hdfs://nn:8020/weir", "hdfs://nn1:8020,nn2:8020/w?user=weir", "hdfs:///w?namenodes=a,b:1",
		"hdfs://u@nn/w?io_timeout=1s&keytab=/k&kerberos_principal=a@B&namenode_spn=nn/_HOST@B", "hdfs://[::1]:8020/w", "hdfs://[::1]/w"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		t.Setenv("HADOOP_USER_NAME", "u")
		u, err := url.Parse(s)
		if err != nil {
			return
		}
		o, err := hdfs.ParseURI(u)
		if err != nil {
			return
		}
		if len(o.Namenodes) == 0 || !strings.HasPrefix(o.Root, "/") || o.IOTimeout <= 0 {
			t.Fatalf("ParseURI(%q) = %+v without an error", s, o)
		}
		if _, err := hdfs.New(o); err != nil {
			t.Fatalf("New(ParseURI(%q)): %v", s, err)
		}
	})
}

// TestHAStandbyFailover: an HA pair sharing one namespace. When the active
// namenode turns standby (StandbyException) and the other takes over, the
// storage follows without being reopened; with both standby it is
// unavailable, saying why; when one is active again it recovers.
func TestHAStandbyFailover(t *testing.T) {
	srv := hdfstest.New(t, hdfstest.Config{NameNodes: 2})
	st, err := checkpoint.OpenStorage(fmt.Sprintf("hdfs://%s/weir/ha?user=weir", srv.NameNodeAddrs()))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := t.Context()
	put(t, st, "j/chk-1/_metadata", []byte("one"))

	srv.SetStandby(0, true)
	srv.SetStandby(1, false)
	if got := get(t, st, "j/chk-1/_metadata"); string(got) != "one" {
		t.Fatalf("after failover: read %q", got)
	}
	put(t, st, "j/chk-2/_metadata", []byte("two"))

	srv.SetStandby(1, true)
	_, err = st.Stat(ctx, "j/chk-2/_metadata")
	if !errors.Is(err, checkpoint.ErrUnavailable) || !strings.Contains(err.Error(), "StandbyException") {
		t.Fatalf("with both namenodes standby: want ErrUnavailable naming StandbyException, got %v", err)
	}
	t.Logf("both standby: %v", err)

	srv.SetStandby(0, false)
	eventually(t, 10*time.Second, func() bool {
		_, err := st.Stat(ctx, "j/chk-2/_metadata")
		return err == nil
	}, "Stat once namenode 0 is active again")
	if ids, err := checkpoint.ListCompleted(ctx, st, "j"); err != nil || len(ids) != 2 {
		t.Fatalf("ListCompleted = %v, %v; want [1 2]", ids, err)
	}
	if calls := srv.Calls(); calls["getFileInfo"] == 0 {
		t.Fatalf("calls: %v", calls)
	}
	noProtocolErrors(t, srv)
}

// TestCheckpointLifecycle runs weir's checkpoint code over hdfs://: state
// files and metadata commits, an aborted checkpoint left by a writer that
// died mid-upload, retention, and a restore that checks sizes and CRCs.
func TestCheckpointLifecycle(t *testing.T) {
	srv := hdfstest.New(t, hdfstest.Config{BlockSize: 256 << 10})
	st := open(t, srv, "")
	ctx := t.Context()
	state := func(n int64, sub int) []byte { return pattern(300<<10 + int(n)*1000 + sub) }
	for n := int64(1); n <= 5; n++ {
		dir := checkpoint.CheckpointDir("job", n)
		m := &checkpointpb.Metadata{FormatVersion: 1, JobId: "job", CheckpointId: n}
		for sub := range 2 {
			h, err := checkpoint.WriteState(ctx, st, dir, checkpoint.StateFileName("count", sub, "count"), state(n, sub))
			if err != nil {
				t.Fatal(err)
			}
			m.Subtasks = append(m.Subtasks, &checkpointpb.SubtaskState{VertexId: "count", Subtask: int32(sub), Parallelism: 2,
				Operators: []*checkpointpb.OperatorState{{Node: "count", Handle: h}}})
		}
		if n == 4 {
			// A worker dies mid-upload of checkpoint 4: its file stays open
			// on the namenode and 4 never completes.
			w, err := st.Create(ctx, path(dir, "dying-0-x"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write(pattern(100 << 10)); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = w.Close() }) // releases the stream at the end
			continue
		}
		if err := checkpoint.WriteMetadata(ctx, st, dir, m); err != nil {
			t.Fatal(err)
		}
		if _, err := checkpoint.Retain(ctx, st, "job", 3); err != nil {
			t.Fatal(err)
		}
	}
	ids, err := checkpoint.ListCompleted(ctx, st, "job")
	if err != nil || fmt.Sprint(ids) != "[2 3 5]" {
		t.Fatalf("ListCompleted = %v, %v; want [2 3 5]", ids, err)
	}
	if _, err := st.Stat(ctx, checkpoint.CheckpointDir("job", 4)); !errors.Is(err, checkpoint.ErrNotFound) {
		t.Fatalf("the aborted checkpoint 4 was not retained away: %v", err)
	}
	dir := checkpoint.CheckpointDir("job", 5)
	m, err := checkpoint.ReadMetadata(ctx, st, dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkpoint.ValidateForRestore(ctx, st, dir, m); err != nil {
		t.Fatal(err)
	}
	for _, sub := range m.GetSubtasks() {
		got, err := checkpoint.ReadState(ctx, st, dir, sub.GetOperators()[0].GetHandle())
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, state(5, int(sub.GetSubtask()))) {
			t.Fatalf("subtask %d restored different state", sub.GetSubtask())
		}
	}
	noProtocolErrors(t, srv)
}

func path(dir, name string) string { return dir + "/" + name }

// TestKerberosMisconfigured: Kerberos itself cannot be tested here (no KDC),
// but a keytab that cannot be loaded is a clear ErrUnavailable on first
// use, not a panic or a hang.
func TestKerberosMisconfigured(t *testing.T) {
	srv := hdfstest.New(t, hdfstest.Config{})
	uri := fmt.Sprintf("hdfs://%s/weir?kerberos_principal=weir/host@EXAMPLE.COM&keytab=%s/missing.keytab&namenode_spn=nn/_HOST@EXAMPLE.COM&krb5_conf=%s/krb5.conf",
		srv.NameNodeAddr(), t.TempDir(), t.TempDir())
	st, err := checkpoint.OpenStorage(uri)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_, err = st.Stat(t.Context(), "x")
	if !errors.Is(err, checkpoint.ErrUnavailable) || !strings.Contains(err.Error(), "kerberos keytab") || !strings.Contains(err.Error(), "missing.keytab") {
		t.Fatalf("Stat with a missing keytab: want ErrUnavailable naming the keytab, got %v", err)
	}
}
