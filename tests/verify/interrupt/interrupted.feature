Feature: A run the user interrupts
    The first scenario's job runs until Ctrl-C; the second scenario never starts.

    Scenario: A job that outlives the user's patience
        Given the job "tests/verify/interrupt/sleeper.yaml"
        When the job runs to completion within 600 seconds
        Then the job succeeded

    Scenario: A scenario after the interruption
        Given the job "tests/verify/interrupt/sleeper.yaml"
        When the job runs to completion within 600 seconds
        Then the job succeeded
