//go:build failpoints

package failpoint

import (
	"errors"
	"testing"
)

func TestArm(t *testing.T) {
	if err := Arm("kafka-sink-commit=error@2; task-state-upload=delay:1ms"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { Disable(KafkaSinkCommit); Disable(TaskStateUpload) })
	if err := Inject(KafkaSinkCommit); err != nil {
		t.Fatalf("first hit: %v, want nil (@2)", err)
	}
	if err := Inject(KafkaSinkCommit); !errors.Is(err, ErrInjected) {
		t.Fatalf("second hit: %v, want ErrInjected", err)
	}
	if err := Inject(KafkaSinkCommit); err != nil {
		t.Fatalf("third hit: %v, want nil", err)
	}
	if err := Inject(TaskStateUpload); err != nil {
		t.Fatal(err)
	}
	if Hits(KafkaSinkCommit) != 3 {
		t.Fatalf("hits %d, want 3", Hits(KafkaSinkCommit))
	}
	for _, bad := range []string{"nope=crash", "kafka-sink-commit", "kafka-sink-commit=boom", "kafka-sink-commit=error@0", "kafka-sink-commit=delay:x"} {
		if err := Arm(bad); err == nil {
			t.Errorf("Arm(%q): no error", bad)
		}
	}
}
