# Real containers with podman (the container runtime, `kfkit build`, the `container` tests):
#   containers-tools  rootful podman and runc (Debian bookworm's packages; crun fails on a
#                     hybrid cgroup layout), iptables for netavark's pod networks,
#                     debootstrap for the local base, and kfkit's containers.conf under
#                     $(KFKIT_CACHE)/containers, exported as CONTAINERS_CONF so kfkit,
#                     the builder and the tests share it
#   images            every image in dockerfiles/ under the name the manifests use, built
#                     only when its context changed (a label holds the context's hash); the
#                     base is pulled, or made locally when no registry answers
# python -m kfkit.containers is the single place the configuration and the image names live.

export CONTAINERS_CONF ?= $(KFKIT_CACHE)/containers/containers.conf
CONTAINER_PACKAGES := podman runc catatonit netavark aardvark-dns iptables debootstrap

.PHONY: containers-tools images
TEST_DEPS += images

containers-tools: venv
	@command -v podman && command -v runc && command -v debootstrap && test -x /usr/sbin/iptables && test -x /usr/lib/podman/aardvark-dns && test -x /usr/libexec/podman/catatonit || \
		(apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
			--no-install-recommends $(CONTAINER_PACKAGES))
	@$(PY) -m kfkit.containers config >/dev/null

images: containers-tools
	nice -n 10 $(PY) -m kfkit.containers images
