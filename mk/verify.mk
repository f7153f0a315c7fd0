# The verification suite's tools:
#   verify-chromium   headless Chromium for the `browser` test tier (the HTML report is opened and
#                     screenshotted). Debian's chromium and chromium-driver packages; Debian's
#                     security archive keeps only the newest build of them, so the package is not
#                     pinned to a version (an old pin would stop installing after the next update).
# Idempotent: nothing is installed when chromium is already on PATH.

.PHONY: verify-chromium verify-fast verify-report
TEST_DEPS += verify-chromium

verify-chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			chromium chromium-driver fonts-dejavu-core; }
	@chromium --version

# The CI-sized suite, as `make demo` runs it; reports go to reports/.
verify-fast: venv
	$(VENV)/bin/kfkit verify --tags fast --report-dir reports
