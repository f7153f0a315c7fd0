"""Real containers on this machine: podman's configuration, the kit's images and their base.

``podman`` holds the one podman configuration that ``make images``, the builder and the
local backend's container runtime all use; ``images`` names and builds the images of
``dockerfiles/``; ``base`` makes a local stand-in for their base image when no registry
can be reached.
"""
