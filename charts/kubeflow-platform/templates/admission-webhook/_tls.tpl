{{/*
The webhook's CA and serving certificate (base64, as Secret data). An installed release
keeps the pair it has (looked up in the cluster), so an upgrade neither changes the CA
bundle under running pods nor restarts the webhook; a first install (and `helm template`,
which has no cluster) generates a new pair. Memoised in .Values so that the Secret, the
caBundle and the pod's checksum all see the same certificate within one render.
*/}}
{{- define "kfp.webhookTls" -}}
{{- if not (hasKey .Values "__webhookTls") -}}
{{- $name := printf "%s-admission-webhook" (include "kfp.fullname" .) -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (printf "%s-tls" $name) -}}
{{- $data := dict -}}
{{- if $existing -}}
{{- $data = $existing.data | default dict -}}
{{- end -}}
{{- if and (hasKey $data "ca.crt") (hasKey $data "tls.crt") (hasKey $data "tls.key") -}}
{{- $_ := set .Values "__webhookTls" (pick $data "ca.crt" "tls.crt" "tls.key") -}}
{{- else -}}
{{- $ca := genCA (printf "%s-ca" $name) (int .Values.admissionWebhook.certificateDays) -}}
{{- $dns := list $name (printf "%s.%s" $name .Release.Namespace) (printf "%s.%s.svc" $name .Release.Namespace) -}}
{{- $cert := genSignedCert (printf "%s.%s.svc" $name .Release.Namespace) nil $dns (int .Values.admissionWebhook.certificateDays) $ca -}}
{{- $_ := set .Values "__webhookTls" (dict "ca.crt" ($ca.Cert | b64enc) "tls.crt" ($cert.Cert | b64enc) "tls.key" ($cert.Key | b64enc)) -}}
{{- end -}}
{{- end -}}
{{- toYaml (get .Values "__webhookTls") -}}
{{- end -}}
