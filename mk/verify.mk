# The verification suite's tools:
#   verify-chromium   headless Chromium for the `browser` test tier (the HTML report is opened and
#                     screenshotted). Debian's chromium and chromium-driver packages; Debian's
#                     security archive keeps only the newest build of them, so the package is not
#                     pinned to a version (an old pin would stop installing after the next update).
#   verify-cucumber-reporter   the npm package cucumber-html-reporter 7.2.0 and its dependencies,
#                     pinned by tests/verify/cucumber_reporter/package-lock.json (npm ci), under
#                     $(KFKIT_CACHE)/verify: a standard cucumber tool the tests feed our cucumber JSON.
# Idempotent: nothing is installed when chromium is already on PATH or the package is in the cache.

CUCUMBER_REPORTER_SRC := tests/verify/cucumber_reporter
CUCUMBER_REPORTER_DIR := $(KFKIT_CACHE)/verify/cucumber-html-reporter

.PHONY: verify-chromium verify-cucumber-reporter verify-fast verify-demo
TEST_DEPS += verify-chromium verify-cucumber-reporter

verify-chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			chromium chromium-driver fonts-dejavu-core; }
	@chromium --version

verify-cucumber-reporter: $(CUCUMBER_REPORTER_DIR)/node_modules/.package-lock.json

$(CUCUMBER_REPORTER_DIR)/node_modules/.package-lock.json: \
		$(CUCUMBER_REPORTER_SRC)/package.json $(CUCUMBER_REPORTER_SRC)/package-lock.json
	mkdir -p $(CUCUMBER_REPORTER_DIR)
	cp $^ $(CUCUMBER_REPORTER_DIR)/
	cd $(CUCUMBER_REPORTER_DIR) && npm ci --no-audit --no-fund --silent

# The CI-sized suite (the helm scenario needs the pinned helm from platform.mk).
verify-fast: venv platform-helm
	$(VENV)/bin/kfkit verify --tags fast --report-dir reports/verify

# What `make demo` shows: the @fast suite and the paper-sized PyTorchJob, in one report
# (kfkit verify prints where the HTML report is).
verify-demo: venv platform-helm
	$(VENV)/bin/kfkit verify --tags "fast or demo" --report-dir reports/demo
