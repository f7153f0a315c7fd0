Feature: A scenario that must fail
    The reports and the pipeline's verdict have to show a failed scenario
    with its error; a manifest that does not exist fails at once.

    Scenario: A manifest that does not exist fails the scenario
        Given the job "manifests/examples/no-such-job.yaml"
        When the job runs to completion within 60 seconds
        Then the job succeeded
