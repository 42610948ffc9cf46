{{/* Names and labels. */}}
{{- define "wsus.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "wsus.fullname" -}}
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

{{- define "wsus.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "wsus.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one component: (dict "root" $ "component" "client-gateway"). */}}
{{- define "wsus.selectorLabels" -}}
app.kubernetes.io/name: {{ include "wsus.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "wsus.componentLabels" -}}
{{ include "wsus.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "wsus.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "wsus.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "wsus.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* sync-worker's own account: the only one bound to a Role (its Lease). */}}
{{- define "wsus.syncWorkerServiceAccountName" -}}
{{- if .Values.syncWorker.serviceAccount.create -}}
{{- default (printf "%s-sync-worker" (include "wsus.fullname" .)) .Values.syncWorker.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.syncWorker.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The Lease sync-worker replicas take before a sync (WSUS_LEASE_NAME). */}}
{{- define "wsus.leaseName" -}}
{{- printf "%s-sync-worker" (include "wsus.fullname" .) -}}
{{- end -}}

{{- define "wsus.secretName" -}}
{{- default (printf "%s-secrets" (include "wsus.fullname" .)) .Values.secrets.existingSecret -}}
{{- end -}}

{{- define "wsus.databaseSecretName" -}}
{{- default (printf "%s-secrets" (include "wsus.fullname" .)) .Values.database.existingSecret -}}
{{- end -}}

{{- define "wsus.databaseSecretKey" -}}
{{- if .Values.database.existingSecret -}}{{ .Values.database.existingSecretKey }}{{- else -}}DATABASE_URL{{- end -}}
{{- end -}}

{{- define "wsus.contentClaim" -}}
{{- default (printf "%s-content" (include "wsus.fullname" .)) .Values.content.persistence.existingClaim -}}
{{- end -}}

{{/* The environment every service shares. */}}
{{- define "wsus.commonEnv" -}}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "wsus.databaseSecretName" . }}
      key: {{ include "wsus.databaseSecretKey" . }}
- name: WSUS_MIGRATE_ON_START
  value: {{ (not .Values.migration.enabled) | quote }}
- name: RUST_LOG
  value: {{ .Values.logLevel | quote }}
{{- with .Values.otel.endpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
{{- end }}
{{- with .Values.server.id }}
- name: WSUS_SERVER_ID
  value: {{ . | quote }}
{{- end }}
{{- with .Values.server.fqdn }}
- name: WSUS_SERVER_FQDN
  value: {{ . | quote }}
{{- end }}
{{- end -}}

{{- define "wsus.probes" -}}
livenessProbe:
  httpGet: {path: /healthz, port: http}
  periodSeconds: 10
  failureThreshold: 6
readinessProbe:
  httpGet: {path: /readyz, port: http}
  periodSeconds: 5
  failureThreshold: 3
{{- end -}}

{{/* The gRPC address of a component's headless Service. */}}
{{- define "wsus.grpcUrl" -}}
{{- printf "http://%s-%s-grpc:%v" (include "wsus.fullname" .root) .component .port -}}
{{- end -}}

{{/* The bucket's credentials, for the services that read or write content. */}}
{{- define "wsus.s3Env" -}}
{{- if and (eq .Values.content.store "s3") .Values.content.s3.existingSecret }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ .Values.content.s3.existingSecret }}
      key: AWS_ACCESS_KEY_ID
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .Values.content.s3.existingSecret }}
      key: AWS_SECRET_ACCESS_KEY
{{- end }}
{{- end }}

{{/* The TCP port of a URL: its own, else the scheme's (443 for https, 80 otherwise);
an IPv6 host in brackets keeps its colons. */}}
{{- define "wsus.urlPort" -}}
{{- $u := urlParse . -}}
{{- $port := ternary 443 80 (eq $u.scheme "https") -}}
{{- $hostport := $u.host -}}
{{- if hasPrefix "[" $hostport -}}{{- $hostport = splitList "]" $hostport | last -}}{{- end -}}
{{- if contains ":" $hostport -}}{{- $port = splitList ":" $hostport | last | int -}}{{- end -}}
{{- $port -}}
{{- end }}
