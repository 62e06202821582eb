package hdfs_test

import (
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/weir-stream/weir/checkpoint"
	"github.com/weir-stream/weir/internal/hdfstest"
)

// BenchmarkStateRoundTrip writes and reads back an 8 MiB state file through
// hdfs:// (client and in-process test server) and through file:// in the
// same run, and reports both throughputs and their ratio. The test server
// keeps blocks in memory, so the figure is the client's and the protocol's
// cost, not a real cluster's.
func BenchmarkStateRoundTrip(b *testing.B) {
	const size = 8 << 20
	srv := hdfstest.New(b, hdfstest.Config{BlockSize: 4 << 20})
	hd, err := checkpoint.OpenStorage(fmt.Sprintf("hdfs://%s/bench?user=weir", srv.NameNodeAddr()))
	if err != nil {
		b.Fatal(err)
	}
	defer hd.Close()
	fs, err := checkpoint.OpenStorage(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer fs.Close()
	data := pattern(size)
	roundTrip := func(st checkpoint.Storage, p string) time.Duration {
		start := time.Now()
		w, err := st.Create(b.Context(), p)
		if err != nil {
			b.Fatal(err)
		}
		for off := 0; off < size; off += 1 << 20 {
			if _, err := w.Write(data[off : off+1<<20]); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
		r, err := st.Open(b.Context(), p)
		if err != nil {
			b.Fatal(err)
		}
		if n, err := io.Copy(io.Discard, r); err != nil || n != size {
			b.Fatalf("read %d bytes: %v", n, err)
		}
		r.Close()
		return time.Since(start)
	}
	var hdfsTime, fileTime time.Duration
	b.SetBytes(2 * size)
	b.ResetTimer()
	for i := range b.N {
		p := fmt.Sprintf("f-%d", i)
		hdfsTime += roundTrip(hd, p)
		fileTime += roundTrip(fs, p)
	}
	mb := float64(2*size*b.N) / (1 << 20)
	b.ReportMetric(mb/hdfsTime.Seconds(), "hdfs-MiB/s")
	b.ReportMetric(mb/fileTime.Seconds(), "file-MiB/s")
	b.ReportMetric(hdfsTime.Seconds()/fileTime.Seconds(), "hdfs/file-time")
}
