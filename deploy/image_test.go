package deploy

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestImageMatchesChart: the image runs as the user the chart's security
// context names, exposes the ports the chart and the units pass, runs
// /usr/local/bin/weir as they expect, and builds with the Go of go.mod.
// (No Docker daemon here: the build itself is `make image`.)
func TestImageMatchesChart(t *testing.T) {
	raw, err := os.ReadFile("image/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var froms, exposed []string
	var user, entrypoint, goVersion string
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "FROM":
			froms = append(froms, f[1])
		case "USER":
			user = f[1]
		case "EXPOSE":
			exposed = append(exposed, f[1:]...)
		case "ENTRYPOINT":
			entrypoint = strings.Join(f[1:], " ")
		case "ARG":
			if v, ok := strings.CutPrefix(f[1], "GO_VERSION="); ok {
				goVersion = v
			}
		}
	}
	if len(froms) < 2 || !strings.Contains(froms[len(froms)-1], "distroless") || !strings.HasSuffix(froms[len(froms)-1], ":nonroot") {
		t.Errorf("stages %v: want a build stage and a distroless nonroot runtime", froms)
	}
	files, err := render(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := decode(t, files)
	for _, sts := range r.statefulSets {
		if sts.Name == releaseName+"-etcd" {
			continue
		}
		uid := *sts.Spec.Template.Spec.SecurityContext.RunAsUser
		gid := *sts.Spec.Template.Spec.SecurityContext.RunAsGroup
		if want := strconv.FormatInt(uid, 10) + ":" + strconv.FormatInt(gid, 10); user != want {
			t.Errorf("Dockerfile USER %q, the chart runs %s as %s", user, sts.Name, want)
		}
		for _, c := range sts.Spec.Template.Spec.Containers {
			for _, p := range c.Ports {
				if !contains(exposed, strconv.Itoa(int(p.ContainerPort))) {
					t.Errorf("Dockerfile EXPOSE %v lacks %s's port %s %d", exposed, sts.Name, p.Name, p.ContainerPort)
				}
			}
		}
	}
	if entrypoint != `["/usr/local/bin/weir"]` {
		t.Errorf("ENTRYPOINT %s: the chart passes only args to /usr/local/bin/weir", entrypoint)
	}
	mod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(mod)
	if m == nil {
		t.Fatal("../go.mod has no go directive")
	}
	if string(m[1]) != goVersion {
		t.Errorf("Dockerfile GO_VERSION %q, go.mod says go %s", goVersion, m[1])
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
