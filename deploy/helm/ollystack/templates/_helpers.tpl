{{/* Names, labels and the pieces every OllyStack pod shares. */}}

{{- define "ollystack.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "ollystack.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Selector labels of one role: call with (dict "root" $ "role" "gateway"). */}}
{{- define "ollystack.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .role }}
{{- end -}}

{{- define "ollystack.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "ollystack.secretName" -}}
{{- .Values.existingSecret | default (printf "%s-secrets" (include "ollystack.fullname" .)) -}}
{{- end -}}

{{/* The settings of every process: the ConfigMap's plain values and the Secret's credentials. */}}
{{- define "ollystack.envFrom" -}}
envFrom:
  - configMapRef:
      name: {{ include "ollystack.fullname" . }}-settings
  - secretRef:
      name: {{ include "ollystack.secretName" . }}
{{- end -}}

{{/* Pod annotations: Prometheus scraping (call with (dict "root" $ "port" 8080)) and a
     checksum of the settings, so pods restart when the settings change. */}}
{{- define "ollystack.podAnnotations" -}}
checksum/settings: {{ include (print .root.Template.BasePath "/settings.yaml") .root | sha256sum }}
{{- if .root.Values.metricsAnnotations }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .port | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- end -}}

{{- define "ollystack.securityContext" -}}
securityContext:
  runAsNonRoot: true
  runAsUser: 10001
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: false
  capabilities:
    drop: [ALL]
{{- end -}}
