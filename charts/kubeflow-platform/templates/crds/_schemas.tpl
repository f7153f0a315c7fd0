{{/*
Compact structural schemas for the Kubeflow CRDs. They accept everything the upstream
(training-operator v1.9.0, kubeflow v1.10.0) CRDs accept: the job-level fields are typed as
upstream types them, and pod templates keep every field (x-kubernetes-preserve-unknown-fields)
because the API server validates the pods the operator creates from them anyway.
*/}}

{{- define "kfp.crd.replicaSpecs" -}}
type: object
description: Replica type (Master, Worker, Chief, PS, Evaluator) to its replica spec.
additionalProperties:
  type: object
  properties:
    replicas:
      type: integer
      format: int32
    restartPolicy:
      type: string
    template:
      type: object
      description: A PodTemplateSpec; the pods the operator creates are validated by the API server.
      x-kubernetes-preserve-unknown-fields: true
{{- end -}}

{{- define "kfp.crd.runPolicy" -}}
type: object
properties:
  activeDeadlineSeconds:
    type: integer
    format: int64
  backoffLimit:
    type: integer
    format: int32
  cleanPodPolicy:
    type: string
  managedBy:
    type: string
  schedulingPolicy:
    type: object
    x-kubernetes-preserve-unknown-fields: true
  suspend:
    type: boolean
    default: false
  ttlSecondsAfterFinished:
    type: integer
    format: int32
{{- end -}}

{{- define "kfp.crd.jobPrinterColumns" -}}
- name: State
  type: string
  jsonPath: .status.conditions[-1:].type
- name: Age
  type: date
  jsonPath: .metadata.creationTimestamp
{{- end -}}

{{- define "kfp.crd.objectList" -}}
type: array
items:
  type: object
  x-kubernetes-preserve-unknown-fields: true
{{- end -}}

{{- define "kfp.crd.stringList" -}}
type: array
items:
  type: string
{{- end -}}

{{- define "kfp.crd.status" -}}
type: object
x-kubernetes-preserve-unknown-fields: true
{{- end -}}
