@fault
Feature: Fault tolerance
    When a worker dies in the middle of training, the operator restarts the
    replicas (restartPolicy OnFailure) and training resumes from its last
    checkpoint instead of starting over; the job still succeeds.

    @fast
    Scenario: A killed worker is restarted and the job succeeds from its checkpoint
        Given the training job "manifests/pytorchjob-mnist-gloo.yaml"
        And the job has 1 Worker replicas
        And the trainer arguments "--train-limit 3000 --test-limit 1000 --epochs 3 --log-interval 1 --checkpoint-every 5"
        When the job is started
        And worker-0 is killed once master-0 has logged 12 training steps
        And the job runs to completion within 300 seconds
        Then the job succeeded
        And the job restarted a replica
        And training resumed from a checkpoint

    @container
    Scenario: A killed worker container is restarted and the job succeeds from its checkpoint
        Given the training job "manifests/pytorchjob-mnist-gloo.yaml"
        And the job has 1 Worker replicas
        And the trainer arguments "--train-limit 3000 --test-limit 1000 --epochs 3 --log-interval 1 --checkpoint-every 5"
        And the replicas run as podman containers of the job's images
        When the job is started
        And worker-0 is killed once master-0 has logged 12 training steps
        And the job runs to completion within 300 seconds
        Then the job succeeded
        And the job restarted a replica
        And training resumed from a checkpoint
