package deploy

import (
	"fmt"
	"net"
	"path"
	"sort"
	"strconv"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/loader"
	"helm.sh/helm/v4/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

const (
	chartDir    = "helm/weir"
	releaseName = "weir"
	namespace   = "streams"
)

// render runs `helm template` through Helm's library, in strict mode (a
// template naming a value that does not exist fails), with overrides
// merged over the chart's values.yaml.
func render(t *testing.T, overrides map[string]any) (map[string]string, error) {
	t.Helper()
	chrt, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("load chart %s: %v", chartDir, err)
	}
	vals, err := util.ToRenderValues(chrt, overrides,
		common.ReleaseOptions{Name: releaseName, Namespace: namespace, IsInstall: true}, nil)
	if err != nil {
		return nil, err
	}
	return engine.Engine{Strict: true}.Render(chrt, vals)
}

// rendered is a chart's output decoded into the Kubernetes API types.
type rendered struct {
	statefulSets map[string]*appsv1.StatefulSet
	services     map[string]*corev1.Service
	pdbs         map[string]*policyv1.PodDisruptionBudget
	pvcs         map[string]*corev1.PersistentVolumeClaim
	accounts     map[string]*corev1.ServiceAccount
	policies     map[string]*networkingv1.NetworkPolicy
	notes        string
}

// decode decodes every rendered object strictly: an unknown or misspelled
// field, a duplicate key or a value of the wrong type fails, as would a
// kind the chart is not expected to make.
func decode(t *testing.T, files map[string]string) *rendered {
	t.Helper()
	r := &rendered{
		statefulSets: map[string]*appsv1.StatefulSet{},
		services:     map[string]*corev1.Service{},
		pdbs:         map[string]*policyv1.PodDisruptionBudget{},
		pvcs:         map[string]*corev1.PersistentVolumeClaim{},
		accounts:     map[string]*corev1.ServiceAccount{},
		policies:     map[string]*networkingv1.NetworkPolicy{},
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if strings.HasSuffix(name, "NOTES.txt") {
			r.notes = files[name]
			continue
		}
		if strings.HasPrefix(path.Base(name), "_") {
			continue
		}
		for i, doc := range strings.Split(files[name], "\n---") {
			where := fmt.Sprintf("%s#%d", name, i)
			if strings.TrimSpace(stripComments(doc)) == "" {
				continue
			}
			var tm metav1.TypeMeta
			if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
				t.Fatalf("%s: %v\n%s", where, err, doc)
			}
			var obj any
			switch tm.APIVersion + " " + tm.Kind {
			case "apps/v1 StatefulSet":
				o := &appsv1.StatefulSet{}
				obj, r.statefulSets[objName(t, where, doc)] = o, o
			case "v1 Service":
				o := &corev1.Service{}
				obj, r.services[objName(t, where, doc)] = o, o
			case "policy/v1 PodDisruptionBudget":
				o := &policyv1.PodDisruptionBudget{}
				obj, r.pdbs[objName(t, where, doc)] = o, o
			case "v1 PersistentVolumeClaim":
				o := &corev1.PersistentVolumeClaim{}
				obj, r.pvcs[objName(t, where, doc)] = o, o
			case "v1 ServiceAccount":
				o := &corev1.ServiceAccount{}
				obj, r.accounts[objName(t, where, doc)] = o, o
			case "networking.k8s.io/v1 NetworkPolicy":
				o := &networkingv1.NetworkPolicy{}
				obj, r.policies[objName(t, where, doc)] = o, o
			default:
				t.Fatalf("%s: unexpected kind %q %q\n%s", where, tm.APIVersion, tm.Kind, doc)
			}
			if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
				t.Fatalf("%s: not a valid %s: %v\n%s", where, tm.Kind, err, doc)
			}
			meta := obj.(metav1.Object)
			for _, msg := range validation.IsDNS1123Label(meta.GetName()) {
				t.Errorf("%s: name %q: %s", where, meta.GetName(), msg)
			}
			checkLabels(t, where, meta.GetLabels())
		}
	}
	return r
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, line := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

func objName(t *testing.T, where, doc string) string {
	t.Helper()
	var m metav1.PartialObjectMetadata
	if err := yaml.Unmarshal([]byte(doc), &m); err != nil || m.Name == "" {
		t.Fatalf("%s: no metadata.name (%v)", where, err)
	}
	return m.Name
}

func checkLabels(t *testing.T, where string, l map[string]string) {
	t.Helper()
	for k, v := range l {
		for _, msg := range validation.IsQualifiedName(k) {
			t.Errorf("%s: label key %q: %s", where, k, msg)
		}
		for _, msg := range validation.IsValidLabelValue(v) {
			t.Errorf("%s: label %s value %q: %s", where, k, v, msg)
		}
	}
}

// valueSets are the configurations the chart is checked in: every storage
// kind, the bundled and an external etcd, plaintext, HTTPS with client
// certificates.
var valueSets = map[string]map[string]any{
	"defaults": {},
	"s3": {
		"checkpoints": map[string]any{"type": "s3", "s3": map[string]any{
			"uri": "s3://weir-checkpoints/prod", "endpoint": "http://minio.storage:9000", "credentialsSecret": "weir-s3"}},
		"jobSecrets":     map[string]any{"envSecretName": "weir-job-env", "fileSecretName": "weir-job-files"},
		"serviceAccount": map[string]any{"annotations": map[string]any{"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/weir"}},
	},
	"hdfs": {
		"checkpoints": map[string]any{"type": "hdfs", "hdfs": map[string]any{
			"uri": "hdfs://namenode.hadoop:8020/weir", "options": "use_datanode_hostname=true"},
			"extraAllowedPaths": []any{"hdfs://namenode.hadoop:8020/out"}},
		"worker": map[string]any{"replicas": 5, "slots": 8, "terminationGracePeriodSeconds": 300,
			"metricsTokens": map[string]any{"secretName": "weir-metrics-tokens"}},
	},
	"external-etcd": {
		"etcd": map[string]any{"enabled": false, "endpoints": []any{"etcd-a.db:2379", "etcd-b.db:2379", "etcd-c.db:2379"},
			"tlsSecretName": "etcd-client", "user": "weir", "passwordSecret": map[string]any{"name": "etcd-weir", "key": "pw"}},
		"coordinator": map[string]any{"replicas": 2, "extraArgs": []any{"--retained-jobs=500"}},
	},
	"insecure": {
		"tls":  map[string]any{"enabled": false},
		"rest": map[string]any{"insecure": true, "tokens": map[string]any{"secretName": ""}},
	},
	"https-client-cert": {
		"rest": map[string]any{"https": map[string]any{"secretName": "weir-http", "requireClientCert": true}},
	},
	"network-policy": {
		"networkPolicy": map[string]any{"enabled": true,
			"metricsFrom": []any{map[string]any{"namespaceSelector": map[string]any{"matchLabels": map[string]any{"kubernetes.io/metadata.name": "monitoring"}}}}},
	},
	"https": {
		"rest":             map[string]any{"https": map[string]any{"secretName": "weir-http"}},
		"checkpoints":      map[string]any{"pvc": map[string]any{"existingClaim": "shared-nfs", "mountPath": "/data/weir"}},
		"fullnameOverride": "wr",
	},
}

func TestChartRendersValidObjects(t *testing.T) {
	for name, overrides := range valueSets {
		t.Run(name, func(t *testing.T) {
			files, err := render(t, overrides)
			if err != nil {
				t.Fatalf("render: %v", err)
			}
			r := decode(t, files)
			checkChart(t, r, overrides)
		})
	}
}

// values reads one value of a set, falling back to the chart's default.
func value(overrides map[string]any, keys ...string) any {
	var cur any = overrides
	for _, k := range keys {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[k]
	}
	return cur
}

func checkChart(t *testing.T, r *rendered, overrides map[string]any) {
	fullname := releaseName
	if f, ok := overrides["fullnameOverride"].(string); ok {
		fullname = f
	}
	bundledEtcd := value(overrides, "etcd", "enabled") != false
	want := []string{fullname + "-coordinator", fullname + "-worker"}
	if bundledEtcd {
		want = append(want, fullname+"-etcd")
	}
	if len(r.statefulSets) != len(want) {
		t.Fatalf("StatefulSets %v, want %v", keys(r.statefulSets), want)
	}
	for _, name := range want {
		sts := r.statefulSets[name]
		if sts == nil {
			t.Fatalf("no StatefulSet %s (have %v)", name, keys(r.statefulSets))
		}
		checkStatefulSet(t, r, sts)
		checkPDB(t, r, sts)
	}
	for _, svc := range r.services {
		checkService(t, r, svc)
	}
	if on := value(overrides, "networkPolicy", "enabled") == true; on != (len(r.policies) == len(want)) || !on && len(r.policies) != 0 {
		t.Errorf("networkPolicy.enabled %v: NetworkPolicies %v", on, keys(r.policies))
	}
	for _, np := range r.policies {
		checkNetworkPolicy(t, r, np)
	}
	coord := r.statefulSets[fullname+"-coordinator"]
	worker := r.statefulSets[fullname+"-worker"]
	_, cflags := weirContainer(t, coord, "coordinator")
	_, wflags := weirContainer(t, worker, "worker")

	// Workers are given every coordinator, by the names the coordinators
	// advertise (their FQDN under the headless Service) and their gRPC port.
	cc := container(t, coord, "coordinator")
	var addrs []string
	for i := range int(*coord.Spec.Replicas) {
		addrs = append(addrs, net.JoinHostPort(podFQDN(coord, i), portOf(t, "coordinator", cc, "grpc")))
	}
	if got := wflags["coordinator-grpc"]; got != strings.Join(addrs, ",") {
		t.Errorf("worker --coordinator-grpc=%s, want every coordinator: %s", got, strings.Join(addrs, ","))
	}
	// The same storage and roots on both sides.
	if cflags["allowed-paths"] != wflags["allowed-paths"] {
		t.Errorf("--allowed-paths differ: coordinator %q, worker %q", cflags["allowed-paths"], wflags["allowed-paths"])
	}
	storage := cflags["checkpoint-storage"]
	if !strings.HasPrefix(wflags["allowed-paths"], strings.TrimPrefix(storage, "file://")) {
		t.Errorf("the workers' --allowed-paths=%s do not start with the checkpoint root %s", wflags["allowed-paths"], storage)
	}
	if dir, ok := strings.CutPrefix(storage, "file://"); ok {
		for _, sts := range []*appsv1.StatefulSet{coord, worker} {
			claim := mountedClaim(t, sts, dir)
			if claim == "" {
				t.Errorf("%s: file:// checkpoints under %s but no volume claim is mounted there", sts.Name, dir)
			}
			if pvc, ok := r.pvcs[claim]; ok && (len(pvc.Spec.AccessModes) != 1 || pvc.Spec.AccessModes[0] != corev1.ReadWriteMany) {
				t.Errorf("PVC %s: access modes %v, want ReadWriteMany (every pod writes checkpoints)", claim, pvc.Spec.AccessModes)
			}
		}
	} else if len(r.pvcs) != 0 {
		t.Errorf("checkpoints at %s, but the chart makes PVCs %v", storage, keys(r.pvcs))
	}
	// etcd: every member, by the names it advertises, at its client port.
	if bundledEtcd {
		etcd := r.statefulSets[fullname+"-etcd"]
		ec := container(t, etcd, "etcd")
		var eps []string
		for i := range int(*etcd.Spec.Replicas) {
			eps = append(eps, net.JoinHostPort(podFQDN(etcd, i), portOf(t, "etcd", ec, "client")))
		}
		if cflags["etcd"] != strings.Join(eps, ",") {
			t.Errorf("coordinator --etcd=%s, want the bundled members %s", cflags["etcd"], strings.Join(eps, ","))
		}
		tlsOn := value(overrides, "tls", "enabled") != false
		if _, ok := cflags["etcd-cert"]; ok != tlsOn {
			t.Errorf("coordinator --etcd-cert given: %v, cluster TLS on: %v", ok, tlsOn)
		}
		if hasArg(ec.Command, "--client-cert-auth") != tlsOn {
			t.Errorf("etcd --client-cert-auth: %v, cluster TLS on: %v", hasArg(ec.Command, "--client-cert-auth"), tlsOn)
		}
	} else if cflags["etcd"] != "etcd-a.db:2379,etcd-b.db:2379,etcd-c.db:2379" {
		t.Errorf("coordinator --etcd=%s, want the configured endpoints", cflags["etcd"])
	}
	if _, ok := wflags["metrics-token-file"]; ok != (value(overrides, "worker", "metricsTokens") != nil) {
		t.Errorf("worker --metrics-token-file given: %v, worker.metricsTokens set: %v", ok, !ok)
	}
	// Authentication of the REST API.
	_, insecure := cflags["insecure"]
	_, tokens := cflags["tokens-file"]
	if insecure == tokens {
		t.Errorf("coordinator: --insecure given: %v, --tokens-file given: %v; want exactly one", insecure, tokens)
	}
	// Drain: a worker gets time to hand its subtasks over on SIGTERM.
	if g := *worker.Spec.Template.Spec.TerminationGracePeriodSeconds; g < 60 {
		t.Errorf("worker terminationGracePeriodSeconds %d: too short for a drain", g)
	}
	if want, ok := value(overrides, "worker", "terminationGracePeriodSeconds").(int); ok && int64(want) != *worker.Spec.Template.Spec.TerminationGracePeriodSeconds {
		t.Errorf("worker terminationGracePeriodSeconds %d, values say %d", *worker.Spec.Template.Spec.TerminationGracePeriodSeconds, want)
	}
	if !strings.Contains(r.notes, storage) {
		t.Errorf("NOTES.txt does not name the checkpoint storage %s:\n%s", storage, r.notes)
	}
}

func keys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func hasArg(args []string, a string) bool {
	for _, x := range args {
		if x == a {
			return true
		}
	}
	return false
}

func podFQDN(sts *appsv1.StatefulSet, i int) string {
	return fmt.Sprintf("%s-%d.%s.%s.svc.cluster.local", sts.Name, i, sts.Spec.ServiceName, namespace)
}

func container(t *testing.T, sts *appsv1.StatefulSet, name string) *corev1.Container {
	t.Helper()
	for i := range sts.Spec.Template.Spec.Containers {
		if c := &sts.Spec.Template.Spec.Containers[i]; c.Name == name {
			return c
		}
	}
	t.Fatalf("%s: no container %q", sts.Name, name)
	return nil
}

// weirContainer checks the args of a weir container against the binary:
// the verb is the component, every flag exists, and the whole command line
// parses (`weir VERB ARGS --help` parses every flag and value before it
// prints the help).
func weirContainer(t *testing.T, sts *appsv1.StatefulSet, verb string) (*corev1.Container, map[string]string) {
	t.Helper()
	c := container(t, sts, verb)
	where := sts.Name + "/" + c.Name
	if len(c.Command) != 0 {
		t.Errorf("%s: command %q overrides the image's entrypoint", where, c.Command)
	}
	got, flags := parseArgs(t, where, c.Args)
	if got != verb {
		t.Fatalf("%s: runs weir %s, want weir %s", where, got, verb)
	}
	checkFlagsExist(t, where, verb, flags)
	out, err := execWeir(t, append(append([]string{}, c.Args...), "--help")...)
	if err != nil {
		t.Errorf("%s: weir does not take its args %q: %v\n%s", where, c.Args, err, out)
	}
	return c, flags
}

func portOf(t *testing.T, where string, c *corev1.Container, name string) string {
	t.Helper()
	for _, p := range c.Ports {
		if p.Name == name {
			return strconv.Itoa(int(p.ContainerPort))
		}
	}
	t.Fatalf("%s: container %s has no port named %q", where, c.Name, name)
	return ""
}

// listenFlags maps each weir verb's listen flags to the container port
// that must carry them.
var listenFlags = map[string]map[string]string{
	"coordinator": {"grpc-addr": "grpc", "http-addr": "http"},
	"worker":      {"data-addr": "data", "http-addr": "http"},
}

// readinessPath is where each weir process says it is ready: a coordinator,
// leader or standby, once it serves (so a rolling upgrade goes on past the
// standbys); a worker once it is registered with the leader (so the next
// worker drains only when this one's slots are back).
var readinessPath = map[string]string{"coordinator": "/healthz", "worker": "/readyz"}

// fileFlags are flags that name files the pod must have mounted.
var fileFlags = []string{"tls-cert", "tls-key", "tls-ca", "etcd-cert", "etcd-key", "etcd-ca",
	"etcd-password-file", "tokens-file", "http-tls-cert", "http-tls-key", "http-client-ca", "metrics-token-file"}

func checkStatefulSet(t *testing.T, r *rendered, sts *appsv1.StatefulSet) {
	t.Helper()
	pod := sts.Spec.Template.Spec
	sel, err := metav1.LabelSelectorAsSelector(sts.Spec.Selector)
	if err != nil {
		t.Fatalf("%s: selector: %v", sts.Name, err)
	}
	if !sel.Matches(labels.Set(sts.Spec.Template.Labels)) {
		t.Errorf("%s: selector %s does not match its pods' labels %v", sts.Name, sel, sts.Spec.Template.Labels)
	}
	if svc := r.services[sts.Spec.ServiceName]; svc == nil || svc.Spec.ClusterIP != corev1.ClusterIPNone || !svc.Spec.PublishNotReadyAddresses {
		t.Errorf("%s: serviceName %q is not a headless Service publishing unready pods", sts.Name, sts.Spec.ServiceName)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Errorf("%s: mounts a service account token; weir calls no Kubernetes API", sts.Name)
	}
	if sa := pod.ServiceAccountName; r.accounts[sa] == nil {
		t.Errorf("%s: service account %q is not in the chart", sts.Name, sa)
	}
	// Security context: the image's non-root user, nothing more.
	psc := pod.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Errorf("%s: pods may run as root: %+v", sts.Name, psc)
	}
	if psc != nil && (psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault) {
		t.Errorf("%s: no RuntimeDefault seccomp profile", sts.Name)
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
		if v.Secret != nil && v.Secret.SecretName == "" {
			t.Errorf("%s: volume %s: Secret without a name", sts.Name, v.Name)
		}
	}
	for _, vct := range sts.Spec.VolumeClaimTemplates {
		volumes[vct.Name] = corev1.Volume{Name: vct.Name}
	}
	for _, c := range pod.Containers {
		where := sts.Name + "/" + c.Name
		sc := c.SecurityContext
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" {
			t.Errorf("%s: container security context %+v: want no privilege escalation, a read-only root, every capability dropped", where, sc)
		}
		if c.LivenessProbe == nil || c.ReadinessProbe == nil {
			t.Errorf("%s: liveness or readiness probe missing", where)
		}
		if _, ok := c.Resources.Requests[corev1.ResourceMemory]; !ok {
			t.Errorf("%s: no memory request", where)
		}
		for _, m := range c.VolumeMounts {
			if _, ok := volumes[m.Name]; !ok {
				t.Errorf("%s: mounts volume %q, which the pod does not have", where, m.Name)
			}
		}
		for _, p := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe} {
			if p == nil {
				continue
			}
			var port string
			switch {
			case p.HTTPGet != nil:
				port = p.HTTPGet.Port.String()
			case p.TCPSocket != nil:
				port = p.TCPSocket.Port.String()
			default:
				t.Errorf("%s: probe is neither HTTP nor TCP", where)
				continue
			}
			portOf(t, where, &c, port)
		}
		verb := c.Name
		if _, ok := listenFlags[verb]; !ok {
			continue
		}
		_, flags := parseArgs(t, where, c.Args)
		if pod.SetHostnameAsFQDN == nil || !*pod.SetHostnameAsFQDN {
			t.Errorf("%s: setHostnameAsFQDN is off: a weir process on 0.0.0.0 would advertise a host name other pods cannot resolve", where)
		}
		for flag, portName := range listenFlags[verb] {
			host, port, err := net.SplitHostPort(flags[flag])
			if err != nil {
				t.Errorf("%s: --%s=%q: %v", where, flag, flags[flag], err)
				continue
			}
			if host != "0.0.0.0" {
				t.Errorf("%s: --%s=%s: listen on 0.0.0.0 so the pod's FQDN is advertised", where, flag, flags[flag])
			}
			if want := portOf(t, where, &c, portName); port != want {
				t.Errorf("%s: --%s=%s, but container port %q is %s", where, flag, flags[flag], portName, want)
			}
		}
		// Probes go to the port --http-addr serves: liveness to /healthz,
		// readiness to readinessPath; where kubelet cannot pass a client
		// certificate check, to that port by TCP.
		_, requireClientCert := flags["http-client-ca"]
		for _, pp := range []struct {
			p    *corev1.Probe
			path string
		}{{c.LivenessProbe, "/healthz"}, {c.ReadinessProbe, readinessPath[verb]}} {
			p := pp.p
			switch {
			case p == nil:
			case requireClientCert:
				if p.TCPSocket == nil || p.TCPSocket.Port.String() != "http" {
					t.Errorf("%s: REST needs client certificates: probes must be TCP to port http, got %+v", where, p.ProbeHandler)
				}
			case p.HTTPGet == nil || p.HTTPGet.Path != pp.path || p.HTTPGet.Port.String() != "http":
				t.Errorf("%s: probe %+v, want GET %s on port http", where, p.ProbeHandler, pp.path)
			default:
				_, https := flags["http-tls-cert"]
				if (p.HTTPGet.Scheme == corev1.URISchemeHTTPS) != https {
					t.Errorf("%s: probe scheme %q with --http-tls-cert given: %v", where, p.HTTPGet.Scheme, https)
				}
			}
		}
		for _, f := range fileFlags {
			if file, ok := flags[f]; ok && mountFor(c, file) == nil {
				t.Errorf("%s: --%s=%s is not under any volume mount", where, f, file)
			}
		}
	}
}

func mountFor(c corev1.Container, file string) *corev1.VolumeMount {
	for i, m := range c.VolumeMounts {
		if strings.HasPrefix(file, strings.TrimSuffix(m.MountPath, "/")+"/") || file == m.MountPath {
			return &c.VolumeMounts[i]
		}
	}
	return nil
}

// mountedClaim is the PVC mounted at dir in the StatefulSet's weir container.
func mountedClaim(t *testing.T, sts *appsv1.StatefulSet, dir string) string {
	t.Helper()
	for _, c := range sts.Spec.Template.Spec.Containers {
		for _, m := range c.VolumeMounts {
			if m.MountPath != dir {
				continue
			}
			for _, v := range sts.Spec.Template.Spec.Volumes {
				if v.Name == m.Name && v.PersistentVolumeClaim != nil {
					return v.PersistentVolumeClaim.ClaimName
				}
			}
		}
	}
	return ""
}

// checkPDB: exactly one budget covers the StatefulSet's pods, and lets at
// least one go (or a node drain would hang) but not all of them.
func checkPDB(t *testing.T, r *rendered, sts *appsv1.StatefulSet) {
	t.Helper()
	var found []string
	for name, pdb := range r.pdbs {
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err != nil {
			t.Fatalf("PDB %s: %v", name, err)
		}
		if !sel.Matches(labels.Set(sts.Spec.Template.Labels)) {
			continue
		}
		found = append(found, name)
		mu := pdb.Spec.MaxUnavailable
		if mu == nil || pdb.Spec.MinAvailable != nil {
			t.Errorf("PDB %s: want maxUnavailable only", name)
			continue
		}
		if n := mu.IntValue(); n < 1 || n >= int(*sts.Spec.Replicas) && *sts.Spec.Replicas > 1 {
			t.Errorf("PDB %s: maxUnavailable %s of %d %s pods", name, mu, *sts.Spec.Replicas, sts.Name)
		}
	}
	if len(found) != 1 {
		t.Errorf("%s: PodDisruptionBudgets covering it: %v, want one", sts.Name, found)
	}
}

// checkService: it selects pods of a StatefulSet, and each target port is
// a named port of those pods.
func checkService(t *testing.T, r *rendered, svc *corev1.Service) {
	t.Helper()
	var target *appsv1.StatefulSet
	for _, sts := range r.statefulSets {
		if labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(sts.Spec.Template.Labels)) {
			if target != nil {
				t.Errorf("Service %s selects the pods of %s and %s", svc.Name, target.Name, sts.Name)
			}
			target = sts
		}
	}
	if target == nil {
		t.Errorf("Service %s selects no pods (selector %v)", svc.Name, svc.Spec.Selector)
		return
	}
	for _, p := range svc.Spec.Ports {
		found := false
		for _, c := range target.Spec.Template.Spec.Containers {
			for _, cp := range c.Ports {
				found = found || cp.Name == p.TargetPort.String()
			}
		}
		if !found {
			t.Errorf("Service %s port %s: target port %q is not a port of %s", svc.Name, p.Name, p.TargetPort.String(), target.Name)
		}
	}
}

// TestChartRefusesBadValues: values that cannot work fail rendering with
// an error saying which value and what to do.
func TestChartRefusesBadValues(t *testing.T) {
	for _, tc := range []struct {
		name      string
		overrides map[string]any
		want      string
	}{
		{"unknown storage", map[string]any{"checkpoints": map[string]any{"type": "ftp"}},
			`checkpoints.type must be pvc, s3 or hdfs, got "ftp"`},
		{"s3 without a URI", map[string]any{"checkpoints": map[string]any{"type": "s3"}},
			"checkpoints.s3.uri must be s3://BUCKET/PREFIX"},
		{"hdfs URI of another scheme", map[string]any{"checkpoints": map[string]any{"type": "hdfs", "hdfs": map[string]any{"uri": "s3://x/y"}}},
			"checkpoints.hdfs.uri must be hdfs://NAMENODE:PORT/PATH"},
		{"relative mount path", map[string]any{"checkpoints": map[string]any{"pvc": map[string]any{"mountPath": "data"}}},
			`checkpoints.pvc.mountPath "data" must be an absolute path`},
		{"no tokens and not insecure", map[string]any{"rest": map[string]any{"tokens": map[string]any{"secretName": ""}}},
			"rest.tokens.secretName is empty"},
		{"client certificates without HTTPS", map[string]any{"rest": map[string]any{"https": map[string]any{"requireClientCert": true}}},
			"rest.https.requireClientCert needs rest.https.secretName"},
		{"no etcd at all", map[string]any{"etcd": map[string]any{"enabled": false}},
			"set etcd.endpoints"},
		{"TLS without a Secret", map[string]any{"tls": map[string]any{"secretName": ""}},
			"set tls.secretName"},
		{"etcd user without a password", map[string]any{"etcd": map[string]any{"enabled": false, "endpoints": []any{"e:2379"}, "user": "weir"}},
			"etcd.user needs etcd.passwordSecret.name"},
		// values.schema.json: misspelt or mistyped values fail too.
		{"misspelt value", map[string]any{"worker": map[string]any{"replica": 5}},
			"replica"},
		{"no slots", map[string]any{"worker": map[string]any{"slots": 0}},
			"slots"},
		{"lease TTL without a unit", map[string]any{"coordinator": map[string]any{"leaseTTL": "5"}},
			"leaseTTL"},
		{"port out of range", map[string]any{"worker": map[string]any{"dataPort": 70000}},
			"dataPort"},
		{"host names too long", map[string]any{"fullnameOverride": "a-release-name-that-is-much-too-long-for-this"},
			"over Linux's 63"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := render(t, tc.overrides)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("render: %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

// selected is the StatefulSet whose pods a selector picks (exactly one).
func selected(t *testing.T, r *rendered, where string, ls *metav1.LabelSelector) *appsv1.StatefulSet {
	t.Helper()
	sel, err := metav1.LabelSelectorAsSelector(ls)
	if err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	var found []*appsv1.StatefulSet
	for _, sts := range r.statefulSets {
		if sel.Matches(labels.Set(sts.Spec.Template.Labels)) {
			found = append(found, sts)
		}
	}
	if len(found) != 1 {
		t.Errorf("%s: selector %s picks %d StatefulSets' pods, want one", where, sel, len(found))
		return nil
	}
	return found[0]
}

// checkNetworkPolicy: it applies to one component, admits only named
// ports that component's pods have, from pods of the chart's components
// or the configured peers; and every port a Service exposes of those pods
// is admitted by some rule (or the component would be cut off).
func checkNetworkPolicy(t *testing.T, r *rendered, np *networkingv1.NetworkPolicy) {
	t.Helper()
	where := "NetworkPolicy " + np.Name
	sts := selected(t, r, where, &np.Spec.PodSelector)
	if sts == nil {
		return
	}
	admitted := map[string]bool{}
	for _, rule := range np.Spec.Ingress {
		for _, from := range rule.From {
			if from.PodSelector != nil && from.NamespaceSelector == nil {
				selected(t, r, where+" from", from.PodSelector)
			}
		}
		for _, p := range rule.Ports {
			if p.Port == nil {
				t.Errorf("%s: a rule admits every port", where)
				continue
			}
			name := p.Port.String()
			found := false
			for _, c := range sts.Spec.Template.Spec.Containers {
				for _, cp := range c.Ports {
					found = found || cp.Name == name
				}
			}
			if !found {
				t.Errorf("%s: admits port %q, which %s's pods do not have", where, name, sts.Name)
			}
			admitted[name] = true
		}
	}
	for _, c := range sts.Spec.Template.Spec.Containers {
		for _, cp := range c.Ports {
			if !admitted[cp.Name] {
				t.Errorf("%s: %s's port %s is admitted by no rule", where, sts.Name, cp.Name)
			}
		}
	}
}
