@pytorch
Feature: Distributed PyTorch MNIST
    A PyTorchJob with one master and N workers trains MNIST with
    DistributedDataParallel over gloo, as in the paper: the job succeeds and
    the test accuracy reaches the paper's 96.62%.

    @fast
    Scenario Outline: A CI-sized PyTorchJob learns MNIST
        Given the training job "manifests/pytorchjob-mnist-gloo.yaml"
        And the job has <workers> Worker replicas
        And the trainer arguments "--train-limit <images> --test-limit 2000 --epochs 1 --eval-every-samples 4000"
        When the job runs to completion within 300 seconds
        Then the job succeeded
        And every replica ended within 60 seconds without failure
        And the test accuracy is at least <accuracy>

        Examples:
            | workers | images | accuracy |
            | 1       | 16000  | 0.90     |
            | 2       | 16000  | 0.90     |

    @full @demo
    Scenario: The PyTorchJob as shipped reaches the paper's 96.62% accuracy
        Given the training job "manifests/pytorchjob-mnist-gloo.yaml"
        When the job runs to completion within 3600 seconds
        Then the job succeeded
        And the test accuracy is at least 0.9662

    @full
    Scenario Outline: The paper's PyTorchJob with more workers reaches 96.62% accuracy
        Given the training job "manifests/pytorchjob-mnist-gloo.yaml"
        And the job has <workers> Worker replicas
        When the job runs to completion within 3600 seconds
        Then the job succeeded
        And the test accuracy is at least 0.9662

        Examples:
            | workers |
            | 2       |
            | 3       |

    @container
    Scenario: The PyTorchJob as shipped reaches 96.62% in containers of its image
        Given the training job "manifests/pytorchjob-mnist-gloo.yaml"
        And the replicas run as podman containers of the job's images
        When the job runs to completion within 3600 seconds
        Then the job succeeded
        And every replica ended within 60 seconds without failure
        And the test accuracy is at least 0.9662
