{{- define "gw.name" -}}{{ .Chart.Name }}{{- end -}}

{{- define "gw.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}{{ .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else -}}{{ printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- end -}}

{{- define "gw.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gw.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "gw.labels" -}}
{{ include "gw.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* config.yaml: the values' config, with the stores from the environment and the policies
     directory the pod mounts. */}}
{{- define "gw.config" -}}
{{- $stores := merge (dict "budgets" "${GATEWAY_REDIS_URL}" "logs" "${GATEWAY_DATABASE_URL}") (.Values.config.stores | default dict) -}}
{{- $policies := ternary "/etc/gateway/policies" "/app/policies" (gt (len .Values.policies) 0) -}}
{{- $cfg := merge (dict "stores" $stores "policies_dir" $policies) (omit .Values.config "stores") -}}
{{ toYaml $cfg }}
{{- end -}}

{{- define "gw.graceSeconds" -}}
{{- $drain := .Values.config.server.shutdown_grace_s | default 30 | int -}}
{{- add .Values.preStopSleepSeconds $drain .Values.terminationMarginSeconds -}}
{{- end -}}
