# The two commands of README: `make train` (the main job: SNA Faster R-CNN on VinDr-CXR when it is
# prepared, else on the embedded demo data; tools/train_net.py --main decides and says why) and
# `make test`. Both prepare the environment first (tools/setup_env.sh; skipped once done).
# `make demo` trains on the demo data whatever is prepared. `make fuzz` feeds FUZZ_BUDGET generated bad
# inputs to the preparers, the evaluator and the config loader and counts tracebacks (tools/fuzz.py).
# ARGS go to the command as written.
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_CONFIG ?= configs/demo/faster_rcnn_R_18_FPN_sna_demo.yaml
FUZZ_BUDGET ?= 10000

.PHONY: setup train demo test fuzz

setup: $(VENV)/.sna-det-ready

$(VENV)/.sna-det-ready: setup.py tools/setup_env.sh
	SNA_VENV=$(VENV) tools/setup_env.sh
	touch $@

train: setup
	$(PY) tools/train_net.py --main $(ARGS)

demo: setup
	$(PY) tools/train_net.py --config-file $(DEMO_CONFIG) $(ARGS)

test: setup
	$(PY) -m pytest tests $(ARGS)

fuzz: setup
	$(PY) tools/fuzz.py --budget $(FUZZ_BUDGET) --progress 500 $(ARGS)
