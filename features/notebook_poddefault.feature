@notebook
Feature: Notebooks get the team's PodDefaults
    A Notebook labelled for a PodDefault gets that PodDefault's environment,
    secrets and volumes in its pod, as Kubeflow's admission webhook adds them.

    @fast
    Scenario: The PodDefault's environment appears in the notebook pod
        Given the notebook "manifests/notebook/notebook.yaml"
        And the PodDefaults in "manifests/notebook"
        When the notebook pod is admitted
        Then its container has POD_DEFAULT set to "Testing is enabled"
        And its container has POD_DEFAULT_SECRET from the secret "test-secret" key "secret_key"
        And its container mounts "/home/jovyan/shared"

    @cluster
    Scenario: On a cluster the webhook injects the PodDefault into the notebook pod
        Given the notebook "manifests/notebook/notebook.yaml"
        And the PodDefaults in "manifests/notebook"
        When the notebook is started on the cluster
        Then its container has POD_DEFAULT set to "Testing is enabled"
        And its container has POD_DEFAULT_SECRET from the secret "test-secret" key "secret_key"
        And its container mounts "/home/jovyan/shared"
