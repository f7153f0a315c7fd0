{{/*
Names and labels. Every object is named "<fullname>-<component>" and carries the
app.kubernetes.io/* labels; selectors use only name, instance and component, which never
change across upgrades.
*/}}

{{- define "kfp.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{- define "kfp.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Labels that select a component's pods: include with (dict "root" $ "component" "x"). */}}
{{- define "kfp.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kfp.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Every label of a component's objects. */}}
{{- define "kfp.labels" -}}
{{ include "kfp.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* "<repository>:<tag>" of an image block. */}}
{{- define "kfp.image" -}}
{{- printf "%s:%s" .repository .tag -}}
{{- end -}}

{{/*
A component container's resources: componentResources (when
componentsResourceConfiguration.enabled) or the component's defaultResources, with the
component's own `resources` merged over either. Include with (dict "root" $ "values" .Values.x).
*/}}
{{- define "kfp.resources" -}}
{{- $base := .values.defaultResources | default dict -}}
{{- if .root.Values.componentsResourceConfiguration.enabled -}}
{{- $base = .root.Values.componentResources -}}
{{- end -}}
{{- $merged := mergeOverwrite (deepCopy $base) (deepCopy (.values.resources | default dict)) -}}
{{- toYaml $merged -}}
{{- end -}}

{{/* Pod-level security context of every component pod (PSS restricted). */}}
{{- define "kfp.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.podSecurity.runAsUser }}
runAsGroup: {{ .Values.podSecurity.runAsGroup }}
fsGroup: {{ .Values.podSecurity.fsGroup }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Container-level security context of every component container (PSS restricted). */}}
{{- define "kfp.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.podSecurity.runAsUser }}
runAsGroup: {{ .Values.podSecurity.runAsGroup }}
allowPrivilegeEscalation: false
privileged: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Annotations of the CRDs: keep them (and every job) when the release goes away. */}}
{{- define "kfp.crdAnnotations" -}}
{{- if .Values.crds.keep }}
annotations:
  helm.sh/resource-policy: keep
{{- end }}
{{- end -}}

{{/* imagePullSecrets of a pod spec, or nothing: include with (dict "root" $ "indent" N). */}}
{{- define "kfp.imagePullSecrets" -}}
{{- with .root.Values.imagePullSecrets }}
{{ printf "imagePullSecrets:\n%s" (toYaml . | indent 2) | indent $.indent }}
{{- end }}
{{- end -}}

{{/* The CRDs the enabled components install, as a YAML list. */}}
{{- define "kfp.expectedCrds" -}}
{{- $crds := list -}}
{{- if .Values.trainingOperator.enabled -}}
{{- if .Values.trainingOperator.pytorchjob.enabled }}{{ $crds = append $crds "pytorchjobs.kubeflow.org" }}{{ end -}}
{{- if .Values.trainingOperator.tfjob.enabled }}{{ $crds = append $crds "tfjobs.kubeflow.org" }}{{ end -}}
{{- end -}}
{{- if .Values.admissionWebhook.enabled }}{{ $crds = append $crds "poddefaults.kubeflow.org" }}{{ end -}}
{{- if .Values.notebookController.enabled }}{{ $crds = append $crds "notebooks.kubeflow.org" }}{{ end -}}
{{- toYaml $crds -}}
{{- end -}}

{{/* The component Deployments of the enabled components, as a YAML list. */}}
{{- define "kfp.expectedDeployments" -}}
{{- $deployments := list -}}
{{- $fullname := include "kfp.fullname" . -}}
{{- range $component := list "trainingOperator" "admissionWebhook" "notebookController" -}}
{{- if (index $.Values $component).enabled -}}
{{- $deployments = append $deployments (printf "%s-%s" $fullname ($component | kebabcase)) -}}
{{- end -}}
{{- end -}}
{{- toYaml $deployments -}}
{{- end -}}
