@helm
Feature: Helm configuration of the platform
    The platform team sets one componentResources block in the chart's values;
    every component the chart installs (operator, PodDefault webhook, notebook
    controller, the post-install check and the helm test pod) must carry it.

    @fast
    Scenario: Rendered components carry the componentResources
        Given the chart setting "componentResources.limits.cpu=750m"
        And the chart setting "componentResources.limits.memory=1536Mi"
        When the platform chart is rendered
        Then every component container has these resources
            | kind     | cpu  | memory |
            | limits   | 750m | 1536Mi |
            | requests | 50m  | 128Mi  |

    @cluster
    Scenario: An upgraded release carries the componentResources
        Given the chart setting "componentResources.limits.cpu=750m"
        And the chart setting "componentResources.limits.memory=1536Mi"
        When the platform chart is upgraded on the cluster
        Then every component container has these resources
            | kind     | cpu  | memory |
            | limits   | 750m | 1536Mi |
            | requests | 50m  | 128Mi  |
