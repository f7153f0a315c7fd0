Feature: Suite smoke test
    A tiny real job that passes and a scenario that must fail, so the tests
    can check that the reports count both correctly.

    Scenario: The all-reduce example succeeds
        Given the job "manifests/examples/pytorchjob-allreduce.yaml"
        When the job runs to completion within 120 seconds
        Then the job succeeded
        And every replica ended within 60 seconds without failure

    Scenario: A manifest that does not exist fails the scenario
        Given the job "manifests/examples/no-such-job.yaml"
        When the job runs to completion within 60 seconds
        Then the job succeeded
