# The two commands of README: `make train` (the main job: SNA Faster R-CNN on VinDr-CXR when it is
# prepared, else on the embedded demo data) and `make test`. Both prepare the environment first
# (tools/setup_env.sh; skipped once done). `make demo` trains on the demo data whatever is prepared.
VENV ?= .venv
PY := $(VENV)/bin/python
MAIN_CONFIG ?= configs/vincxr_faster_sna.yaml
DEMO_CONFIG ?= configs/demo/faster_rcnn_R_18_FPN_sna_demo.yaml

.PHONY: setup train demo test

setup: $(VENV)/.sna-det-ready

$(VENV)/.sna-det-ready: setup.py tools/setup_env.sh
	SNA_VENV=$(VENV) tools/setup_env.sh
	touch $@

train: setup
	@if $(PY) -W ignore -c "import sna_det; sna_det.check_datasets_ready(['vindr_cxr_train', 'vindr_cxr_val'])" 2>/dev/null; \
	then config=$(MAIN_CONFIG); \
	else echo "VinDr-CXR is not prepared (datasets/README.md, section 'VinDr-CXR'): training on the embedded demo data."; \
	     config=$(DEMO_CONFIG); fi; \
	echo "$(PY) tools/train_net.py --config-file $$config $(ARGS)"; \
	$(PY) tools/train_net.py --config-file $$config $(ARGS)

demo: setup
	$(PY) tools/train_net.py --config-file $(DEMO_CONFIG) $(ARGS)

test: setup
	$(PY) -m pytest tests $(ARGS)
