//go:build !failpoints

package failpoint

import "testing"

func TestOffIsInert(t *testing.T) {
	if Enabled {
		t.Fatal("Enabled without the failpoints tag")
	}
	if err := Inject(KafkaSinkCommit); err != nil {
		t.Fatal(err)
	}
}
