Feature: Suite smoke test
    A tiny real job, so the tests of kfkit verify and of the pipeline run
    the real job model and local backend in seconds.

    Scenario: The all-reduce example succeeds
        Given the job "manifests/examples/pytorchjob-allreduce.yaml"
        When the job runs to completion within 120 seconds
        Then the job succeeded
        And every replica ended within 60 seconds without failure
