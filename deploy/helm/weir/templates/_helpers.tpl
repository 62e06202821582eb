{{/* Names. */}}
{{- define "weir.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "weir.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "weir.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "weir.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one component: include "weir.selector" (list . "worker") */}}
{{- define "weir.selector" -}}
{{- $ := index . 0 -}}
app.kubernetes.io/name: {{ include "weir.name" $ }}
app.kubernetes.io/instance: {{ $.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "weir.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "weir.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "weir.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The DNS domain of a component's headless Service: N-worker.NS.svc.D */}}
{{- define "weir.domain" -}}
{{- $ := index . 0 -}}
{{- printf "%s-%s.%s.svc.%s" (include "weir.fullname" $) (index . 1) $.Release.Namespace $.Values.clusterDomain -}}
{{- end -}}

{{/*
Pods advertise their FQDN (setHostnameAsFQDN), which Linux caps at 63
characters for a host name: a longer one would keep the pod from starting.
*/}}
{{- define "weir.checkHostname" -}}
{{- $ := index . 0 -}}
{{- $component := index . 1 -}}
{{- $replicas := int (index . 2) -}}
{{- $host := printf "%s-%s-%d.%s" (include "weir.fullname" $) $component (sub $replicas 1) (include "weir.domain" (list $ $component)) -}}
{{- if gt (len $host) 63 -}}
{{- fail (printf "the %s pods' host name %s is %d characters, over Linux's 63: shorten the release name (fullnameOverride), the namespace or clusterDomain" $component $host (len $host)) -}}
{{- end -}}
{{- end -}}

{{/* Every coordinator's gRPC address, HOST:PORT,… (weir worker --coordinator-grpc). */}}
{{- define "weir.coordinatorAddrs" -}}
{{- $addrs := list -}}
{{- range $i := until (int .Values.coordinator.replicas) -}}
{{- $addrs = append $addrs (printf "%s-coordinator-%d.%s:%d" (include "weir.fullname" $) $i (include "weir.domain" (list $ "coordinator")) (int $.Values.coordinator.grpcPort)) -}}
{{- end -}}
{{- join "," $addrs -}}
{{- end -}}

{{/* etcd client endpoints, HOST:PORT,… (weir coordinator --etcd). */}}
{{- define "weir.etcdEndpoints" -}}
{{- if .Values.etcd.enabled -}}
{{- $addrs := list -}}
{{- range $i := until (int .Values.etcd.replicas) -}}
{{- $addrs = append $addrs (printf "%s-etcd-%d.%s:%d" (include "weir.fullname" $) $i (include "weir.domain" (list $ "etcd")) (int $.Values.etcd.clientPort)) -}}
{{- end -}}
{{- join "," $addrs -}}
{{- else -}}
{{- if not .Values.etcd.endpoints -}}
{{- fail "etcd.enabled is false: set etcd.endpoints to your etcd cluster's HOST:PORT client endpoints" -}}
{{- end -}}
{{- join "," .Values.etcd.endpoints -}}
{{- end -}}
{{- end -}}

{{/* The checkpoint root URI (--checkpoint-storage), after checking the storage values. */}}
{{- define "weir.checkpointURI" -}}
{{- $c := .Values.checkpoints -}}
{{- if eq $c.type "pvc" -}}
{{- if not (hasPrefix "/" $c.pvc.mountPath) -}}
{{- fail (printf "checkpoints.pvc.mountPath %q must be an absolute path" $c.pvc.mountPath) -}}
{{- end -}}
{{- printf "file://%s" $c.pvc.mountPath -}}
{{- else if eq $c.type "s3" -}}
{{- if not (hasPrefix "s3://" $c.s3.uri) -}}
{{- fail (printf "checkpoints.type is s3: checkpoints.s3.uri must be s3://BUCKET/PREFIX, got %q" $c.s3.uri) -}}
{{- end -}}
{{- $c.s3.uri -}}
{{- else if eq $c.type "hdfs" -}}
{{- if not (hasPrefix "hdfs://" $c.hdfs.uri) -}}
{{- fail (printf "checkpoints.type is hdfs: checkpoints.hdfs.uri must be hdfs://NAMENODE:PORT/PATH, got %q" $c.hdfs.uri) -}}
{{- end -}}
{{- $c.hdfs.uri -}}
{{- else -}}
{{- fail (printf "checkpoints.type must be pvc, s3 or hdfs, got %q" $c.type) -}}
{{- end -}}
{{- end -}}

{{/* --allowed-paths: the checkpoint root and checkpoints.extraAllowedPaths. */}}
{{- define "weir.allowedPaths" -}}
{{- $root := include "weir.checkpointURI" . -}}
{{- if eq .Values.checkpoints.type "pvc" -}}
{{- $root = .Values.checkpoints.pvc.mountPath -}}
{{- end -}}
{{- join "," (prepend .Values.checkpoints.extraAllowedPaths $root) -}}
{{- end -}}

{{- define "weir.checkpointClaim" -}}
{{- default (printf "%s-checkpoints" (include "weir.fullname" .)) .Values.checkpoints.pvc.existingClaim -}}
{{- end -}}

{{/* The pod security context of weir's processes: the image's non-root user. */}}
{{- define "weir.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "weir.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
{{- end -}}

{{/* Environment shared by coordinators and workers: storage and job secrets. */}}
{{- define "weir.storageEnv" -}}
{{- $c := .Values.checkpoints -}}
{{- if and (eq $c.type "s3") $c.s3.endpoint }}
- name: WEIR_S3_ENDPOINT
  value: {{ $c.s3.endpoint | quote }}
{{- end }}
{{- if and (eq $c.type "hdfs") $c.hdfs.options }}
- name: WEIR_HDFS_OPTIONS
  value: {{ $c.hdfs.options | quote }}
{{- end }}
{{- if .Values.jobSecrets.fileSecretName }}
- name: WEIR_SECRETS_DIR
  value: /etc/weir/job-secrets
{{- end }}
{{- end -}}

{{- define "weir.envFrom" -}}
{{- if and (eq .Values.checkpoints.type "s3") .Values.checkpoints.s3.credentialsSecret }}
- secretRef:
    name: {{ .Values.checkpoints.s3.credentialsSecret }}
{{- end }}
{{- if .Values.jobSecrets.envSecretName }}
- secretRef:
    name: {{ .Values.jobSecrets.envSecretName }}
{{- end }}
{{- end -}}

{{/* Volumes shared by coordinators and workers. */}}
{{- define "weir.volumes" -}}
- name: tmp
  emptyDir: {}
{{- if .Values.tls.enabled }}
- name: tls
  secret:
    secretName: {{ required "tls.enabled: set tls.secretName to a Secret with tls.crt, tls.key and ca.crt" .Values.tls.secretName }}
{{- end }}
{{- if eq .Values.checkpoints.type "pvc" }}
- name: checkpoints
  persistentVolumeClaim:
    claimName: {{ include "weir.checkpointClaim" . }}
{{- end }}
{{- if .Values.jobSecrets.fileSecretName }}
- name: job-secrets
  secret:
    secretName: {{ .Values.jobSecrets.fileSecretName }}
{{- end }}
{{- end -}}

{{- define "weir.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if .Values.tls.enabled }}
- name: tls
  mountPath: /etc/weir/tls
  readOnly: true
{{- end }}
{{- if eq .Values.checkpoints.type "pvc" }}
- name: checkpoints
  mountPath: {{ .Values.checkpoints.pvc.mountPath }}
{{- end }}
{{- if .Values.jobSecrets.fileSecretName }}
- name: job-secrets
  mountPath: /etc/weir/job-secrets
  readOnly: true
{{- end }}
{{- end -}}

{{/* The cluster TLS flags (both processes). */}}
{{- define "weir.tlsArgs" -}}
{{- if .Values.tls.enabled }}
- --tls-cert=/etc/weir/tls/tls.crt
- --tls-key=/etc/weir/tls/tls.key
- --tls-ca=/etc/weir/tls/ca.crt
{{- end }}
{{- end -}}

{{/* Anti-affinity that prefers one pod of a component per node. */}}
{{- define "weir.spread" -}}
{{- $ := index . 0 -}}
podAntiAffinity:
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- include "weir.selector" . | nindent 12 }}
{{- end -}}

{{/*
The Secret with the coordinators' etcd client certificate, or nothing for
plaintext: the cluster's own with the bundled etcd (which serves the
cluster's certificate), etcd.tlsSecretName with an etcd of your own.
*/}}
{{- define "weir.etcdTLSSecret" -}}
{{- if .Values.etcd.enabled -}}
{{- if .Values.tls.enabled -}}{{ .Values.tls.secretName }}{{- end -}}
{{- else -}}
{{- .Values.etcd.tlsSecretName -}}
{{- end -}}
{{- end -}}
