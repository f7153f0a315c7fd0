@builder
Feature: Container builder
    A data scientist builds an image from a notebook or script: the builder
    writes a build context to the shared volume and runs a Kaniko Job on it.

    @fast
    Scenario: Without a cluster the context and the Kaniko Job are created
        Given the build source "src/kfkit/training/smoke.py"
        When the image "kfkit/verify-smoke:v1" is built without a cluster
        Then the build context has a Dockerfile
        And the Kaniko Job builds "kfkit/verify-smoke:v1" from that context

    @cluster
    Scenario: On a cluster the build succeeds
        Given the build source "src/kfkit/training/smoke.py"
        When the image named by the user data "build_image" is built on the cluster
        Then the build succeeded
