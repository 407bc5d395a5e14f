{{/*
Names. Cluster-scoped objects (ClusterRoles, bindings) carry the release name
so that two releases cannot collide; the CSIDriver is named by the driver.
*/}}
{{- define "lvsnap.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "lvsnap.controllerName" -}}
{{- printf "%s-controller" (include "lvsnap.fullname" .) -}}
{{- end -}}

{{- define "lvsnap.nodeName" -}}
{{- printf "%s-node" (include "lvsnap.fullname" .) -}}
{{- end -}}

{{- define "lvsnap.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "lvsnap.labels" -}}
helm.sh/chart: {{ include "lvsnap.chart" . }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: lvsnap
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of one component: pass (dict "ctx" $ "component" "controller"). */}}
{{- define "lvsnap.selectorLabels" -}}
app.kubernetes.io/name: {{ .ctx.Chart.Name }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* An image reference from {repository, tag}; tag may be a digest. */}}
{{- define "lvsnap.imageRef" -}}
{{- $tag := .tag | toString -}}
{{- if hasPrefix "sha256:" $tag -}}
{{- printf "%s@%s" .repository $tag -}}
{{- else if hasPrefix "@" $tag -}}
{{- printf "%s%s" .repository $tag -}}
{{- else -}}
{{- printf "%s:%s" .repository $tag -}}
{{- end -}}
{{- end -}}

{{- define "lvsnap.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion -}}
{{- include "lvsnap.imageRef" (dict "repository" .Values.image.repository "tag" $tag) -}}
{{- end -}}

{{/* The CSI socket inside every pod, and the node plugin's directory on the host. */}}
{{- define "lvsnap.socketDir" -}}/csi{{- end -}}
{{- define "lvsnap.socket" -}}/csi/csi.sock{{- end -}}
{{- define "lvsnap.pluginDir" -}}
{{- printf "%s/plugins/%s" .Values.kubeletDir .Values.driverName -}}
{{- end -}}

{{/*
Timeouts. The controller answers CreateVolume/CreateSnapshot after at most
controller.createTimeoutSeconds (ready_to_use=false / ABORTED, and the CO calls
again); the sidecars give up on a call after sidecars.timeoutSeconds. The first
must stay well under the second, or a slow node turns every create into a
DeadlineExceeded. JSON Schema cannot compare two values, so the check is here.
*/}}
{{- define "lvsnap.checkTimeouts" -}}
{{- $create := int .Values.controller.createTimeoutSeconds -}}
{{- $sidecar := int .Values.sidecars.timeoutSeconds -}}
{{- if gt (mul 2 $create) $sidecar -}}
{{- fail (printf "controller.createTimeoutSeconds (%d) must be at most half of sidecars.timeoutSeconds (%d): the controller must answer well before the sidecars' CSI call times out" $create $sidecar) -}}
{{- end -}}
{{- end -}}

{{- define "lvsnap.createTimeout" -}}
{{- include "lvsnap.checkTimeouts" . -}}
{{- printf "%ds" (int .Values.controller.createTimeoutSeconds) -}}
{{- end -}}

{{- define "lvsnap.sidecarTimeout" -}}
{{- include "lvsnap.checkTimeouts" . -}}
{{- printf "%ds" (int .Values.sidecars.timeoutSeconds) -}}
{{- end -}}

{{/*
`k1=v1,k2=v2` from a map, keys sorted (Helm ranges over maps in key order).
lvsnap.quotaList prints the values as integers: YAML numbers reach templates as
float64, and %v would print 1000000 as 1e+06.
*/}}
{{- define "lvsnap.kvList" -}}
{{- $pairs := list -}}
{{- range $k, $v := . -}}
{{- $pairs = append $pairs (printf "%s=%s" $k (toString $v)) -}}
{{- end -}}
{{- join "," $pairs -}}
{{- end -}}

{{- define "lvsnap.quotaList" -}}
{{- $pairs := list -}}
{{- range $k, $v := . -}}
{{- $pairs = append $pairs (printf "%s=%d" $k (int64 $v)) -}}
{{- end -}}
{{- join "," $pairs -}}
{{- end -}}

{{/* The global lvsnap flags, before the subcommand. */}}
{{- define "lvsnap.globalArgs" -}}
- --log-format={{ .Values.logFormat }}
- {{ printf "--log-level=%s" .Values.logLevel | quote }}
{{- end -}}

{{/* True when the node runs LVM through nsenter into PID 1's namespaces. */}}
{{- define "lvsnap.nodeHostPID" -}}
{{- if contains "nsenter" .Values.node.lvmCommandPrefix -}}true{{- else -}}false{{- end -}}
{{- end -}}

{{/*
"true" when the chart turns group snapshots on: sidecars.snapshotter.volumeGroupSnapshots
true, or "auto" (the default) and the cluster serves VolumeGroupSnapshotClass in
groupsnapshot.storage.k8s.io/v1 (external-snapshotter v8.6's CRDs installed). Empty otherwise.
*/}}
{{- define "lvsnap.groupSnapshots" -}}
{{- $v := .Values.sidecars.snapshotter.volumeGroupSnapshots -}}
{{- if eq (toString $v) "auto" -}}
{{- if .Capabilities.APIVersions.Has "groupsnapshot.storage.k8s.io/v1/VolumeGroupSnapshotClass" -}}true{{- end -}}
{{- else if eq (toString $v) "true" -}}true
{{- end -}}
{{- end }}

{{/*
One `--device-class=name=…,vg=…,…` flag from a deviceClasses entry (the
schema has checked every key; lvsnap checks them again at startup).
*/}}
{{- define "lvsnap.deviceClassArg" -}}
{{- $parts := list (printf "name=%s" .name) (printf "vg=%s" .vg) -}}
{{- with .thinPool }}{{ $parts = append $parts (printf "thinPool=%s" .) }}{{ end -}}
{{- if hasKey . "overprovisionRatio" }}{{ $parts = append $parts (printf "overprovisionRatio=%v" .overprovisionRatio) }}{{ end -}}
{{- if hasKey . "spareGb" }}{{ $parts = append $parts (printf "spareGb=%v" .spareGb) }}{{ end -}}
{{- with .stripes }}{{ $parts = append $parts (printf "stripes=%v" .) }}{{ end -}}
{{- with .stripeSize }}{{ $parts = append $parts (printf "stripeSize=%s" .) }}{{ end -}}
{{- with .type }}{{ $parts = append $parts (printf "type=%s" .) }}{{ end -}}
{{- with .mirrors }}{{ $parts = append $parts (printf "mirrors=%v" .) }}{{ end -}}
{{- if .default }}{{ $parts = append $parts "default=true" }}{{ end -}}
{{- printf "--device-class=%s" (join "," $parts) -}}
{{- end -}}
