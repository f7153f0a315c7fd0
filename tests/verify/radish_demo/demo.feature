@demo
Feature: Report demo
    Plain arithmetic, so the report tests need no jobs.

    Scenario: A sum that holds
        Given the number 3
        When I add 4
        Then the result is 7

    @broken
    Scenario: A sum that does not hold
        Given the number 3
        When I add 4
        Then the result is 8
        And the result is 7

    Scenario Outline: Sums from a table
        Given the number <a>
        When I add <b>
        Then the result is <sum>

        Examples:
            | a | b | sum |
            | 1 | 2 | 3   |
            | 5 | 5 | 10  |
