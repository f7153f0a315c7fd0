{{/*
The webhook's CA and serving certificate (base64, as Secret data), generated once per
render and memoised in .Values so that the Secret, the caBundle and the pod's checksum
all see the same certificate.
*/}}
{{- define "kfp.webhookTls" -}}
{{- if not (hasKey .Values "__webhookTls") -}}
{{- $name := printf "%s-admission-webhook" (include "kfp.fullname" .) -}}
{{- $ca := genCA (printf "%s-ca" $name) (int .Values.admissionWebhook.certificateDays) -}}
{{- $dns := list $name (printf "%s.%s" $name .Release.Namespace) (printf "%s.%s.svc" $name .Release.Namespace) -}}
{{- $cert := genSignedCert (printf "%s.%s.svc" $name .Release.Namespace) nil $dns (int .Values.admissionWebhook.certificateDays) $ca -}}
{{- $_ := set .Values "__webhookTls" (dict "ca.crt" ($ca.Cert | b64enc) "tls.crt" ($cert.Cert | b64enc) "tls.key" ($cert.Key | b64enc)) -}}
{{- end -}}
{{- toYaml (get .Values "__webhookTls") -}}
{{- end -}}
