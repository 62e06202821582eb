package checkpoint_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/weir-stream/weir/checkpoint"
	"github.com/weir-stream/weir/checkpoint/faultstore"
	checkpointpb "github.com/weir-stream/weir/proto/checkpoint/v1"
)

func sampleMetadata() *checkpointpb.Metadata {
	return &checkpointpb.Metadata{
		JobId: "job-1", JobName: "ip-visits", CheckpointId: 7,
		TriggerUnixMs: 1000, CompleteUnixMs: 1250, JobSpec: []byte("name: ip-visits\n"), MaxParallelism: 128,
		Subtasks: []*checkpointpb.SubtaskState{{
			VertexId: "source", Subtask: 0, Parallelism: 1,
			Operators: []*checkpointpb.OperatorState{{
				Node:    "source",
				Handle:  &checkpointpb.StateHandle{Path: "source-0-source", Size: 3, Crc32C: 42},
				Offsets: []*checkpointpb.KafkaOffset{{Topic: "in", Partition: 0, Offset: 10}},
			}},
		}},
	}
}

func readRaw(t *testing.T, st checkpoint.Storage, p string) []byte {
	t.Helper()
	r, err := st.Open(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeRaw(t *testing.T, st checkpoint.Storage, p string, b []byte) {
	t.Helper()
	_ = st.DeleteAll(t.Context(), p)
	w, err := st.Create(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestMetadataRoundTrip(t *testing.T) {
	st := newFileStorage(t)
	dir := checkpoint.CheckpointDir("job-1", 7)
	m := sampleMetadata()
	if err := checkpoint.WriteMetadata(t.Context(), st, dir, m); err != nil {
		t.Fatal(err)
	}
	if m.FormatVersion != 0 {
		t.Fatal("WriteMetadata modified the caller's message")
	}
	got, err := checkpoint.ReadMetadata(t.Context(), st, dir)
	if err != nil {
		t.Fatal(err)
	}
	want := proto.CloneOf(m)
	want.FormatVersion = 1
	if !proto.Equal(got, want) {
		t.Fatalf("read back %v\nwant %v", got, want)
	}
	if _, err := st.Stat(t.Context(), dir+"/_metadata.tmp"); !errors.Is(err, checkpoint.ErrNotFound) {
		t.Fatalf("temporary file left behind: %v", err)
	}
	// The commit point is written once.
	err = checkpoint.WriteMetadata(t.Context(), st, dir, m)
	if !errors.Is(err, checkpoint.ErrExists) {
		t.Fatalf("second WriteMetadata: %v", err)
	}
	raw := readRaw(t, st, dir+"/_metadata")
	if !bytes.HasPrefix(raw, []byte("WEIRCKPT")) {
		t.Fatalf("no magic: %q", raw[:8])
	}
}

func TestWriteMetadataReplacesStaleTemp(t *testing.T) {
	st := newFileStorage(t)
	dir := "j/chk-3"
	writeRaw(t, st, dir+"/_metadata.tmp", []byte("half written by a dead coordinator"))
	if err := checkpoint.WriteMetadata(t.Context(), st, dir, sampleMetadata()); err != nil {
		t.Fatal(err)
	}
	if _, err := checkpoint.ReadMetadata(t.Context(), st, dir); err != nil {
		t.Fatal(err)
	}
}

func TestWriteMetadataRefusesUnknownVersion(t *testing.T) {
	m := sampleMetadata()
	m.FormatVersion = 2
	if err := checkpoint.WriteMetadata(t.Context(), newFileStorage(t), "j/chk-1", m); err == nil {
		t.Fatal("wrote format_version 2")
	}
}

func TestWriteMetadataFailedRenameLeavesNoCheckpoint(t *testing.T) {
	inner := newFileStorage(t)
	fs := faultstore.New(inner)
	boom := errors.New("namenode gone")
	fs.Fail(faultstore.Rename, "_metadata", boom)
	err := checkpoint.WriteMetadata(t.Context(), fs, "j/chk-4", sampleMetadata())
	if !errors.Is(err, boom) {
		t.Fatalf("WriteMetadata: %v", err)
	}
	ids, err := checkpoint.ListCompleted(t.Context(), inner, "j")
	if err != nil || len(ids) != 0 {
		t.Fatalf("ListCompleted = %v, %v; want none", ids, err)
	}
	if _, err := inner.Stat(t.Context(), "j/chk-4/_metadata.tmp"); !errors.Is(err, checkpoint.ErrNotFound) {
		t.Fatalf("temporary file left: %v", err)
	}
}

func TestReadMetadataErrors(t *testing.T) {
	st := newFileStorage(t)
	dir := "j/chk-1"
	_, err := checkpoint.ReadMetadata(t.Context(), st, dir)
	if !errors.Is(err, checkpoint.ErrNotFound) || !strings.Contains(err.Error(), st.URI(dir+"/_metadata")) {
		t.Fatalf("missing: %v", err)
	}
	good, err := checkpoint.EncodeMetadata(sampleMetadata())
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte {
		b := bytes.Clone(good)
		b[i] ^= 0x01
		return b
	}
	v2 := sampleMetadata()
	v2.FormatVersion = 2
	body, _ := proto.Marshal(v2)
	v2env := append([]byte("WEIRCKPT"), binary.AppendUvarint(nil, uint64(len(body)))...)
	v2env = append(v2env, body...)
	v2env = binary.BigEndian.AppendUint32(v2env, checkpoint.CRC32C(body))
	escape := sampleMetadata()
	escape.Subtasks[0].Operators[0].Handle.Path = "../chk-6/source-0-source"
	escBody, _ := proto.Marshal(&checkpointpb.Metadata{FormatVersion: 1, Subtasks: escape.Subtasks})
	escEnv := append([]byte("WEIRCKPT"), binary.AppendUvarint(nil, uint64(len(escBody)))...)
	escEnv = append(escEnv, escBody...)
	escEnv = binary.BigEndian.AppendUint32(escEnv, checkpoint.CRC32C(escBody))

	for _, tc := range []struct {
		name   string
		data   []byte
		reason string
	}{
		{"empty", nil, "bad magic"},
		{"magic", flip(0), "bad magic"},
		{"truncated", good[:len(good)-1], "truncated"},
		{"trailing", append(bytes.Clone(good), 0), "unexpected bytes"},
		{"body", flip(len(good) / 2), "checksum mismatch"},
		{"crc", flip(len(good) - 1), "checksum mismatch"},
		{"version", v2env, "format_version 2"},
		{"escaping handle", escEnv, "not a clean path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			writeRaw(t, st, dir+"/_metadata", tc.data)
			_, err := checkpoint.ReadMetadata(t.Context(), st, dir)
			if !errors.Is(err, checkpoint.ErrCorrupt) || !strings.Contains(err.Error(), tc.reason) ||
				!strings.Contains(err.Error(), st.URI(dir+"/_metadata")) {
				t.Fatalf("want ErrCorrupt naming the file and %q, got %v", tc.reason, err)
			}
		})
	}
}

func FuzzReadMetadataEnvelope(f *testing.F) {
	good, err := checkpoint.EncodeMetadata(sampleMetadata())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte("WEIRCKPT"))
	f.Add([]byte("WEIRCKPT\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"))
	f.Add(good[:len(good)-3])
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := checkpoint.DecodeMetadata(data)
		if err != nil {
			if !errors.Is(err, checkpoint.ErrCorrupt) {
				t.Fatalf("error does not wrap ErrCorrupt: %v", err)
			}
			return
		}
		// What decodes re-encodes and decodes to the same message.
		again, err := checkpoint.EncodeMetadata(m)
		if err != nil {
			t.Fatal(err)
		}
		m2, err := checkpoint.DecodeMetadata(again)
		if err != nil || !proto.Equal(m, m2) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func TestStateRoundTripAndCorruption(t *testing.T) {
	ctx := t.Context()
	st := newFileStorage(t)
	dir := checkpoint.CheckpointDir("job-1", 3)
	data := []byte("keyed state bytes")
	name := checkpoint.StateFileName("window", 2, "count")
	h, err := checkpoint.WriteState(ctx, st, dir, name, data)
	if err != nil {
		t.Fatal(err)
	}
	if h.Path != name || h.Size != int64(len(data)) || h.Crc32C != checkpoint.CRC32C(data) {
		t.Fatalf("handle %v", h)
	}
	got, err := checkpoint.ReadState(ctx, st, dir, h)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("ReadState = %q, %v", got, err)
	}
	if _, err := checkpoint.WriteState(ctx, st, dir, name, data); !errors.Is(err, checkpoint.ErrExists) {
		t.Fatalf("second WriteState: %v", err)
	}
	m := &checkpointpb.Metadata{Subtasks: []*checkpointpb.SubtaskState{{VertexId: "window", Subtask: 2,
		Operators: []*checkpointpb.OperatorState{{Node: "count", Handle: h}, {Node: "stateless"}}}}}
	if err := checkpoint.ValidateForRestore(ctx, st, dir, m); err != nil {
		t.Fatalf("ValidateForRestore: %v", err)
	}

	uri := st.URI(dir + "/" + name)
	for _, tc := range []struct {
		name   string
		h      *checkpointpb.StateHandle
		kind   error
		reason string
	}{
		{"size", &checkpointpb.StateHandle{Path: name, Size: h.Size - 1, Crc32C: h.Crc32C}, checkpoint.ErrCorrupt, "or more bytes, recorded"},
		{"short", &checkpointpb.StateHandle{Path: name, Size: h.Size + 5, Crc32C: h.Crc32C}, checkpoint.ErrCorrupt, "recorded 22"},
		{"crc", &checkpointpb.StateHandle{Path: name, Size: h.Size, Crc32C: h.Crc32C + 1}, checkpoint.ErrCorrupt, "crc32c"},
		{"missing", &checkpointpb.StateHandle{Path: "gone", Size: 1}, checkpoint.ErrNotFound, st.URI(dir + "/gone")},
		{"escape", &checkpointpb.StateHandle{Path: "../chk-2/x", Size: 1}, checkpoint.ErrCorrupt, "not a clean path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := checkpoint.ReadState(ctx, st, dir, tc.h)
			if !errors.Is(err, tc.kind) || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("want %v mentioning %q, got %v", tc.kind, tc.reason, err)
			}
			if tc.kind == checkpoint.ErrCorrupt && tc.name != "escape" && !strings.Contains(err.Error(), uri) {
				t.Fatalf("error does not name %s: %v", uri, err)
			}
		})
	}

	m.Subtasks[0].Operators = append(m.Subtasks[0].Operators,
		&checkpointpb.OperatorState{Node: "lost", Handle: &checkpointpb.StateHandle{Path: "lost", Size: 1}},
		&checkpointpb.OperatorState{Node: "short", Handle: &checkpointpb.StateHandle{Path: name, Size: 99}})
	err = checkpoint.ValidateForRestore(ctx, st, dir, m)
	if !errors.Is(err, checkpoint.ErrNotFound) || !errors.Is(err, checkpoint.ErrCorrupt) {
		t.Fatalf("ValidateForRestore should report both problems: %v", err)
	}
}

func TestWriteStateFailureLeavesNothing(t *testing.T) {
	inner := newFileStorage(t)
	fs := faultstore.New(inner)
	fs.Fail(faultstore.Close, "", errors.New("disk full"))
	if _, err := checkpoint.WriteState(t.Context(), fs, "j/chk-1", "v-0-n", []byte("x")); err == nil {
		t.Fatal("WriteState succeeded")
	}
	if _, err := inner.Stat(t.Context(), "j/chk-1/v-0-n"); !errors.Is(err, checkpoint.ErrNotFound) {
		t.Fatalf("file left behind: %v", err)
	}
	if _, err := checkpoint.WriteState(t.Context(), inner, "j/chk-1", "../x", nil); err == nil {
		t.Fatal("WriteState accepted a name leaving the directory")
	}
}

func TestDirs(t *testing.T) {
	if got := checkpoint.CheckpointDir("job-1", 7); got != "job-1/chk-7" {
		t.Fatal(got)
	}
	if got := checkpoint.SavepointDir("job-1", 12); got != "job-1/savepoints/sp-12" {
		t.Fatal(got)
	}
}

func TestStateFileNameUniqueAndSafe(t *testing.T) {
	type triple struct {
		v string
		s int
		n string
	}
	cases := []triple{
		{"source", 0, "source"}, {"a-1", 2, "b"}, {"a", 1, "2-b"}, {"a", 12, "b"}, {"a", 1, "2b"},
		{"a/b", 0, "c"}, {"a~2Fb", 0, "c"}, {"", 0, ""}, {"~", 0, "~"}, {"_metadata", 0, "x"},
		{"x", 0, "_metadata"}, {"..", 0, ".."}, {"ü", 3, "日本"}, {strings.Repeat("v", 300), 1, "n"},
		{strings.Repeat("v", 300), 2, "n"}, {"a b", 0, "c\x00d"}, {"a-", 0, "b"}, {"a", 0, "-b"},
		{"a-1-2", 3, "b"}, {"a", 1, "2-2-3-b"}, {"a-1", 2, "2-3-b"}, {"a-1-2-2", 3, "b"}, {"a--1", 0, "x"}, {"a-", 1, "x"},
	}
	seen := map[string]triple{}
	for _, c := range cases {
		name := checkpoint.StateFileName(c.v, c.s, c.n)
		if prev, dup := seen[name]; dup {
			t.Errorf("%v and %v both map to %q", prev, c, name)
		}
		seen[name] = c
		if len(name) > 200 || name == "" || strings.ContainsAny(name, "/\x00 ") || strings.HasPrefix(name, "_") {
			t.Errorf("StateFileName%v = %q: unsafe", c, name)
		}
	}
	for _, c := range []triple{{"window", 3, "count-by-ip"}, {"count-by-ip", 0, "sink-2"}, {"window-5m", 12, "x"}} {
		want := c.v + "-" + strconv.Itoa(c.s) + "-" + c.n
		if got := checkpoint.StateFileName(c.v, c.s, c.n); got != want {
			t.Errorf("plain names should stay readable: %q, want %q", got, want)
		}
	}
	if got := checkpoint.StateFileName("stage-2", 0, "x"); got != "stage~2D2-0-x" {
		t.Errorf("a vertex ending in -<digits> is escaped: %q", got)
	}
}

func completeCheckpoint(t *testing.T, st checkpoint.Storage, job string, id int64) {
	t.Helper()
	dir := checkpoint.CheckpointDir(job, id)
	if _, err := checkpoint.WriteState(t.Context(), st, dir, "v-0-n", []byte("s")); err != nil {
		t.Fatal(err)
	}
	m := sampleMetadata()
	m.CheckpointId = id
	if err := checkpoint.WriteMetadata(t.Context(), st, dir, m); err != nil {
		t.Fatal(err)
	}
}

func TestListLatestRetain(t *testing.T) {
	ctx := t.Context()
	st := newFileStorage(t)
	if ids, err := checkpoint.ListCompleted(ctx, st, "j"); err != nil || ids != nil {
		t.Fatalf("no job dir: %v, %v", ids, err)
	}
	if _, ok, err := checkpoint.Latest(ctx, st, "j"); ok || err != nil {
		t.Fatalf("Latest without checkpoints: %v %v", ok, err)
	}
	for _, id := range []int64{1, 2, 4, 9, 10, 12} {
		completeCheckpoint(t, st, "j", id)
	}
	// Incomplete: aborted (3), crashed (11), in flight (13); noise.
	for _, p := range []string{"j/chk-3/v-0-n", "j/chk-11/_metadata.tmp", "j/chk-13/v-0-n", "j/chk-x/f", "j/chk-007/f", "j/other"} {
		writeRaw(t, st, p, []byte("x"))
	}
	if err := checkpoint.WriteMetadata(ctx, st, checkpoint.SavepointDir("j", 5), sampleMetadata()); err != nil {
		t.Fatal(err)
	}

	ids, err := checkpoint.ListCompleted(ctx, st, "j")
	if err != nil || !equal(ids, []int64{1, 2, 4, 9, 10, 12}) {
		t.Fatalf("ListCompleted = %v, %v", ids, err)
	}
	if id, ok, err := checkpoint.Latest(ctx, st, "j"); id != 12 || !ok || err != nil {
		t.Fatalf("Latest = %d %v %v", id, ok, err)
	}
	if _, err := checkpoint.Retain(ctx, st, "j", 0); err == nil {
		t.Fatal("Retain keep=0 accepted")
	}
	deleted, err := checkpoint.Retain(ctx, st, "j", 3)
	if err != nil || !equal(deleted, []int64{1, 2, 3, 4, 11}) {
		t.Fatalf("Retain = %v, %v", deleted, err)
	}
	entries, err := st.List(ctx, "j")
	if err != nil {
		t.Fatal(err)
	}
	if got := dirNames(entries); got != "chk-007 chk-10 chk-12 chk-13 chk-9 chk-x other savepoints" {
		t.Fatalf("left: %s", got)
	}
	if _, err := checkpoint.ReadMetadata(ctx, st, checkpoint.SavepointDir("j", 5)); err != nil {
		t.Fatalf("savepoint touched: %v", err)
	}
	// Idempotent.
	if deleted, err := checkpoint.Retain(ctx, st, "j", 3); err != nil || len(deleted) != 0 {
		t.Fatalf("second Retain = %v, %v", deleted, err)
	}
	if err := checkpoint.DeleteCheckpoint(ctx, st, "j", 12); err != nil {
		t.Fatal(err)
	}
	if err := checkpoint.DeleteCheckpoint(ctx, st, "j", 12); err != nil {
		t.Fatalf("deleting twice: %v", err)
	}
	if id, _, _ := checkpoint.Latest(ctx, st, "j"); id != 10 {
		t.Fatalf("Latest after delete = %d", id)
	}
}

func TestDeleteCheckpointCutShortLeavesIncomplete(t *testing.T) {
	ctx := t.Context()
	inner := newFileStorage(t)
	completeCheckpoint(t, inner, "j", 1)
	completeCheckpoint(t, inner, "j", 2)
	fs := faultstore.New(inner)
	fs.Fail(faultstore.Delete, "j/chk-1", errors.New("crash"))
	if err := checkpoint.DeleteCheckpoint(ctx, fs, "j", 1); err == nil {
		t.Fatal("DeleteCheckpoint succeeded")
	}
	if ids, _ := checkpoint.ListCompleted(ctx, inner, "j"); !equal(ids, []int64{2}) {
		t.Fatalf("half-deleted checkpoint still completed: %v", ids)
	}
	fs.Reset()
	if deleted, err := checkpoint.Retain(ctx, fs, "j", 5); err != nil || !equal(deleted, []int64{1}) {
		t.Fatalf("Retain = %v, %v", deleted, err)
	}
}

func TestCancelledContext(t *testing.T) {
	st := newFileStorage(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := checkpoint.WriteMetadata(ctx, st, "j/chk-1", sampleMetadata()); !errors.Is(err, context.Canceled) {
		t.Fatalf("WriteMetadata: %v", err)
	}
	if _, err := checkpoint.ListCompleted(ctx, st, "j"); !errors.Is(err, context.Canceled) {
		t.Fatalf("ListCompleted: %v", err)
	}
}

func equal(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func dirNames(infos []checkpoint.FileInfo) string {
	var s []string
	for _, fi := range infos {
		s = append(s, fi.Name)
	}
	return strings.Join(s, " ")
}

var stateNameRE = regexp.MustCompile(`^(.*?)-([0-9]+)-(.*)$`)

func unescapeName(t *testing.T, s string) string {
	t.Helper()
	if s == "~" {
		return ""
	}
	var b []byte
	for i := 0; i < len(s); i++ {
		if s[i] != '~' {
			b = append(b, s[i])
			continue
		}
		if i+2 >= len(s) {
			t.Fatalf("dangling escape in %q", s)
		}
		v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
		if err != nil {
			t.Fatalf("bad escape in %q", s)
		}
		b = append(b, byte(v))
		i += 2
	}
	return string(b)
}

// The name decodes back to its triple: the first "-<digits>-" is the
// subtask, so names are unique.
func FuzzStateFileName(f *testing.F) {
	f.Add("count-by-ip", 3, "count-by-ip")
	f.Add("a-1", 2, "b")
	f.Add("stage-2", 0, "x-1-")
	f.Add("", 0, "~")
	f.Fuzz(func(t *testing.T, vertex string, subtask int, node string) {
		if subtask < 0 {
			subtask = -(subtask + 1)
		}
		name := checkpoint.StateFileName(vertex, subtask, node)
		if len(name) > 200 || strings.ContainsAny(name, "/\x00") || strings.HasPrefix(name, "_") {
			t.Fatalf("unsafe name %q", name)
		}
		if strings.Contains(name[max(0, len(name)-17):], "~") && len(name) == 200 {
			return // cut and hashed
		}
		m := stateNameRE.FindStringSubmatch(name)
		if m == nil {
			t.Fatalf("%q does not parse", name)
		}
		if v, s, n := unescapeName(t, m[1]), m[2], unescapeName(t, m[3]); v != vertex || s != strconv.Itoa(subtask) || n != node {
			t.Fatalf("%q decodes to (%q, %s, %q), want (%q, %d, %q)", name, v, s, n, vertex, subtask, node)
		}
	})
}
