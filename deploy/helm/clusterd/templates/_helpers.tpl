{{- define "clusterd.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "clusterd.headless" -}}
{{- printf "%s-headless" (include "clusterd.fullname" .) -}}
{{- end -}}

{{- define "clusterd.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: server
{{- end -}}

{{- define "clusterd.labels" -}}
{{ include "clusterd.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "clusterd.authSecret" -}}
{{- default (printf "%s-auth" (include "clusterd.fullname" .)) .Values.auth.existingSecret -}}
{{- end -}}

{{- define "clusterd.routeAuthSecret" -}}
{{- default (printf "%s-route-auth" (include "clusterd.fullname" .)) .Values.routeAuth.existingSecret -}}
{{- end -}}
