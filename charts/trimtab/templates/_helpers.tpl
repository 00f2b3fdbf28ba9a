{{/* The chart name, overridable. */}}
{{- define "trimtab.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every resource name: the release name, with the chart name appended unless the release
name already contains it. Kept to 50 characters so that suffixed names ("-webhook-tls") stay within 63.
*/}}
{{- define "trimtab.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "trimtab.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every resource. */}}
{{- define "trimtab.labels" -}}
helm.sh/chart: {{ include "trimtab.chart" . }}
{{ include "trimtab.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: trimtab
{{- end }}

{{/* Labels that select the operator pods. Never change them: Deployment selectors are immutable. */}}
{{- define "trimtab.selectorLabels" -}}
app.kubernetes.io/name: {{ include "trimtab.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "trimtab.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "trimtab.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "trimtab.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "trimtab.webhookServiceName" -}}
{{- printf "%s-webhook" (include "trimtab.fullname" .) }}
{{- end }}

{{- define "trimtab.webhookSecretName" -}}
{{- printf "%s-webhook-tls" (include "trimtab.fullname" .) }}
{{- end }}

{{/* The operator's leader Lease: its name is fixed by `trimtab run` (suffixed in namespaced mode). */}}
{{/* Shard `shard`'s Lease, as the operator names it: `trimtab-leader` with one shard,
`trimtab-shard-<i>` with more; `-<watchNamespace>` appended in namespaced mode. */}}
{{- define "trimtab.leaseName" -}}
{{- $base := "trimtab-leader" }}
{{- if gt (int .Values.operator.shards) 1 }}
{{- $base = printf "trimtab-shard-%d" (int (default 0 .shard)) }}
{{- end }}
{{- if .Values.watchNamespace }}
{{- printf "%s-%s" $base .Values.watchNamespace }}
{{- else }}
{{- $base }}
{{- end }}
{{- end }}

{{/* True (non-empty) when Trimtab manages its own webhook certificate. */}}
{{- define "trimtab.selfManagedCert" -}}
{{- if and .Values.webhook.enabled (not .Values.webhook.certManager.enabled) }}true{{ end }}
{{- end }}

{{/* The port of prometheus.url: explicit, or the scheme's default. */}}
{{- define "trimtab.prometheusPort" -}}
{{- $url := urlParse .Values.prometheus.url }}
{{- $parts := splitList ":" $url.host }}
{{- if gt (len $parts) 1 }}
{{- last $parts }}
{{- else if eq $url.scheme "https" }}
{{- print "443" }}
{{- else }}
{{- print "80" }}
{{- end }}
{{- end }}

{{/* Fails rendering on settings that contradict each other. */}}
{{- define "trimtab.validate" -}}
{{- $auth := .Values.prometheus.auth }}
{{- if and $auth.existingSecret (not (or $auth.bearerTokenKey $auth.passwordKey)) }}
{{- fail "prometheus.auth.existingSecret is set: set bearerTokenKey, or usernameKey and passwordKey" }}
{{- end }}
{{- if and (or $auth.bearerTokenKey $auth.usernameKey $auth.passwordKey) (not $auth.existingSecret) }}
{{- fail "prometheus.auth keys are set but prometheus.auth.existingSecret is empty" }}
{{- end }}
{{- if and $auth.bearerTokenKey (or $auth.usernameKey $auth.passwordKey) }}
{{- fail "prometheus.auth: use either bearerTokenKey or usernameKey/passwordKey, not both" }}
{{- end }}
{{- if and $auth.passwordKey (not $auth.usernameKey) }}
{{- fail "prometheus.auth.passwordKey needs prometheus.auth.usernameKey" }}
{{- end }}
{{- if and $auth.usernameKey (not $auth.passwordKey) }}
{{- fail "prometheus.auth.usernameKey needs prometheus.auth.passwordKey" }}
{{- end }}
{{- if and .Values.prometheus.tls.caConfigMap .Values.prometheus.tls.caSecret }}
{{- fail "prometheus.tls: set caConfigMap or caSecret, not both" }}
{{- end }}
{{- $ports := list (int .Values.operator.metricsPort) (int .Values.operator.healthPort) }}
{{- if .Values.webhook.enabled }}{{- $ports = append $ports (int .Values.webhook.port) }}{{- end }}
{{- if ne (len $ports) (len (uniq $ports)) }}
{{- fail "operator.metricsPort, operator.healthPort and webhook.port must be three different ports" }}
{{- end }}
{{- if and (not .Values.operator.leaderElection) (gt (int .Values.operator.replicas) 1) }}
{{- fail "operator.leaderElection=false needs operator.replicas <= 1: two replicas would both scale" }}
{{- end }}
{{- end }}
