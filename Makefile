# The two commands of README: `make demo` (train + evaluate on the embedded demo data) and
# `make test`. Both prepare the environment first (tools/setup_env.sh; skipped once done).
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_CONFIG ?= configs/demo/faster_rcnn_R_18_FPN_sna_demo.yaml

.PHONY: setup demo test

setup: $(VENV)/.sna-det-ready

$(VENV)/.sna-det-ready: setup.py tools/setup_env.sh
	SNA_VENV=$(VENV) tools/setup_env.sh
	touch $@

demo: setup
	$(PY) tools/train_net.py --config-file $(DEMO_CONFIG) $(ARGS)

test: setup
	$(PY) -m pytest tests $(ARGS)
