package auth

import (
	"net/http"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tok := "weir_abc"
	good := "# comment\n\n" + Line("ci-bot", Operator, tok) + "\n  " + Line("ops@example.com", Admin, "other") + "  \n"
	m, err := Parse([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if p := m[Hash(tok)]; p.Name != "ci-bot" || p.Role != Operator || len(m) != 2 {
		t.Fatalf("%+v", m)
	}
	for _, x := range []struct{ in, want string }{
		{"a viewer\n", "line 1: want NAME ROLE sha256:HEX, got 2 field(s)"},
		{"a boss " + Hash("x") + "\n", `line 1: unknown role "boss"`},
		{"\na viewer sha256:12\n", "line 2: the third field must be sha256: and 64 hex digits"},
		{"a viewer " + tok + "\n", "line 1: the third field"},
		{"a/b viewer " + Hash("x") + "\n", `token name "a/b"`},
		{Line("a", Viewer, "x") + "\n" + Line("b", Admin, "x"), `line 2: the same token hash as "a"`},
	} {
		_, err := Parse([]byte(x.in))
		if err == nil || !strings.Contains(err.Error(), x.want) {
			t.Errorf("Parse(%q) = %v, want %q", x.in, err, x.want)
		}
		// A token pasted in place of its hash is never echoed.
		if err != nil && strings.Contains(err.Error(), tok) {
			t.Errorf("the error shows the token: %v", err)
		}
	}
}

func TestNewTokenAndBearer(t *testing.T) {
	a, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewToken()
	if a == b || !strings.HasPrefix(a, TokenPrefix) || len(a) != len(TokenPrefix)+43 {
		t.Fatalf("%q %q", a, b)
	}
	for h, want := range map[string]string{"Bearer " + a: a, "bearer  " + a + " ": a, "Basic " + a: "", a: "", "": ""} {
		r, _ := http.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", h)
		if got := Bearer(r); got != want {
			t.Errorf("Bearer(%q) = %q, want %q", h, got, want)
		}
	}
}

// FuzzParse: a tokens file never panics the parser, and what it accepts
// holds only valid names and roles.
func FuzzParse(f *testing.F) {
	f.Add([]byte(Line("a", Viewer, "x") + "\n# c\n" + Line("b.c", Admin, "y")))
	f.Add([]byte("a viewer sha256:zz\n"))
	f.Add([]byte("\x00\n\r\n a  b  c d"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data)
		if err != nil {
			return
		}
		for h, p := range m {
			if CheckName(p.Name) != nil || p.Role < Viewer || p.Role > Admin || !strings.HasPrefix(h, "sha256:") || len(h) != 71 {
				t.Fatalf("accepted %q %+v", h, p)
			}
		}
	})
}
