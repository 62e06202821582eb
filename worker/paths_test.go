package worker

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/spec"
	"github.com/weir-stream/weir/worker/builder"
	"github.com/weir-stream/weir/worker/task"
)

// The worker refuses a file sink outside its roots whatever the coordinator
// let through, before anything is created.
func TestWorkerRefusesFileSinkOutsideRoots(t *testing.T) {
	base := t.TempDir()
	root, outside := filepath.Join(base, "root"), filepath.Join(base, "outside")
	for _, d := range []string{root, outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(outside, filepath.Join(root, "escape")); err != nil {
		t.Fatal(err)
	}
	roots, err := spec.ParseRoots([]string{root})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Builder: builder.New(), AllowedPaths: roots}
	cfg.setDefaults()
	sink := func(p string) *spec.Node {
		return &spec.Node{Name: "out", Sink: &spec.Sink{File: &spec.FileSink{Path: p, Format: "raw"}}}
	}
	job := &spec.Job{Name: "j"}
	for _, p := range []string{filepath.Join(outside, "authorized_keys"), filepath.Join(root, "escape", "keys"), filepath.Join(root, "..", "outside", "k")} {
		for _, par := range []int{1, 2} {
			_, err := cfg.Builder.Operator(job, sink(p), &dataflow.Context{Parallelism: par, Subtask: 1})
			if !errors.Is(err, spec.ErrOutsideRoots) || !strings.Contains(err.Error(), "node out") {
				t.Errorf("sink %s (parallelism %d): err = %v", p, par, err)
			}
		}
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Fatalf("files were created outside the root: %v", ents)
	}
	op, err := cfg.Builder.Operator(job, sink(filepath.Join(root, "out.txt")), &dataflow.Context{Parallelism: 1})
	if err != nil || op == nil {
		t.Fatalf("a sink inside the root: %v", err)
	}
}

func TestWorkerRefusesStorageOutsideRoots(t *testing.T) {
	root := t.TempDir()
	roots, err := spec.ParseRoots([]string{root, "hdfs://nn:8020/weir"})
	if err != nil {
		t.Fatal(err)
	}
	var opened []string
	open := func(uri string) (task.StateStore, error) {
		opened = append(opened, uri)
		return nil, nil
	}
	cfg := Config{OpenStore: open, AllowedPaths: roots}
	cfg.setDefaults()
	for _, uri := range []string{"file:///etc", "file://" + root + "/../x", "hdfs://other:8020/weir", "hdfs://nn:8020/etc"} {
		if _, err := cfg.OpenStore(uri); !errors.Is(err, spec.ErrOutsideRoots) {
			t.Errorf("OpenStore(%q) = %v", uri, err)
		}
	}
	for _, uri := range []string{"file://" + root + "/chk", "hdfs://nn:8020/weir/chk"} {
		if _, err := cfg.OpenStore(uri); err != nil {
			t.Errorf("OpenStore(%q) = %v", uri, err)
		}
	}
	if len(opened) != 2 {
		t.Fatalf("opened %v: a refused storage was opened", opened)
	}
}
