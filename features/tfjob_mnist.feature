@tensorflow
Feature: TFJob MNIST with parameter servers
    A TFJob with a chief, parameter servers and workers trains MNIST with
    ParameterServerStrategy. The chief's validation cross-entropy must fall
    under a threshold, and once the chief has succeeded every replica must
    end: the serving ps and workers are stopped by cleanPodPolicy Running.

    @fast
    Scenario: A CI-sized TFJob with parameter servers learns MNIST and every replica ends
        Given the training job "manifests/tfjob-mnist-ps.yaml"
        And the job has 1 Worker replicas
        And the trainer arguments "--train-limit 4000 --test-limit 1000 --eval-every-samples 1000"
        When the job runs to completion within 300 seconds
        Then the job succeeded
        And the validation loss is below 0.6
        And every replica ended within 60 seconds

    @full
    Scenario: The paper's TFJob gets its validation cross-entropy under 0.10
        Given the training job "manifests/tfjob-mnist-ps.yaml"
        When the job runs to completion within 3600 seconds
        Then the job succeeded
        And the validation loss is below 0.10
        And every replica ended within 120 seconds

    @container
    Scenario: The paper's TFJob in containers of its image: cross-entropy under 0.10, every replica ends
        Given the training job "manifests/tfjob-mnist-ps.yaml"
        And the replicas run as podman containers of the job's images
        When the job runs to completion within 3600 seconds
        Then the job succeeded
        And the validation loss is below 0.10
        And every replica ended within 120 seconds
