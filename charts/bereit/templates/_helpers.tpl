{{/* Names, labels and image references shared by the templates. */}}

{{- define "bereit.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name; "bereit" alone when the release is called bereit. */}}
{{- define "bereit.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "bereit.selectorLabels" -}}
app.kubernetes.io/name: {{ include "bereit.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "bereit.labels" -}}
{{ include "bereit.selectorLabels" . }}
app.kubernetes.io/part-of: bereit
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end }}

{{- define "bereit.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "bereit.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "bereit.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{- define "bereit.runtimeImage" -}}
{{- printf "%s:%s" .Values.runtimeImage.repository (.Values.runtimeImage.tag | default .Chart.AppVersion) }}
{{- end }}

{{/* Replicas beyond one share a kopf peering object; one replica runs standalone. */}}
{{- define "bereit.peering" -}}
{{- if gt (int .Values.replicas) 1 }}true{{ end }}
{{- end }}

{{- define "bereit.clusterWide" -}}
{{- if not .Values.watchNamespaces }}true{{ end }}
{{- end }}
