{{/* The chart's name, or nameOverride. */}}
{{- define "gprofiler-agent.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The objects' name: fullnameOverride, else the release name (with the
chart's name appended unless the release name already holds it). */}}
{{- define "gprofiler-agent.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Labels that select the pods (never change across upgrades). */}}
{{- define "gprofiler-agent.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gprofiler-agent.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "gprofiler-agent.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "gprofiler-agent.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "gprofiler-agent.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "gprofiler-agent.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret holding the token: the existing one, else the chart's (which
needs gprofiler.token). */}}
{{- define "gprofiler-agent.secretName" -}}
{{- if .Values.gprofiler.existingSecret }}
{{- .Values.gprofiler.existingSecret }}
{{- else if .Values.gprofiler.token }}
{{- include "gprofiler-agent.fullname" . }}
{{- else }}
{{- fail "set gprofiler.existingSecret (a Secret holding the token) or gprofiler.token" }}
{{- end }}
{{- end }}
