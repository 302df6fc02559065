#!/usr/bin/env bash
# Prepare the project's Python environment, once: a virtual environment in .venv with torch,
# torchvision, detectron2 and sna_det (editable). Safe to re-run: every step is skipped when what it
# installs is already importable, so a torch or detectron2 you built yourself is kept.
#
#   tools/setup_env.sh            # creates/updates .venv, prints the interpreter to use on the last line
#
# Environment:
#   SNA_VENV     where the environment lives (default: <repo>/.venv)
#   PYTHON       the interpreter that creates it (default: python3). If that interpreter already
#                imports torch, the environment is created with --system-site-packages so your
#                torch (and detectron2, if you have it) are used instead of being reinstalled.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${SNA_VENV:-$root/.venv}
base_python=${PYTHON:-python3}
# PyPI's Linux wheels (CUDA builds) run on CPU-only machines too; torchvision must match torch.
torch_spec=${SNA_TORCH_SPEC:-"torch==2.14.* torchvision==0.29.*"}
detectron2_spec=${SNA_DETECTRON2_SPEC:-sal-detectron2==0.7.2}

log() { printf '[setup_env] %s\n' "$*" >&2; }

if [ ! -x "$venv/bin/python" ]; then
  if "$base_python" -c 'import torch' >/dev/null 2>&1; then
    log "creating $venv on top of $base_python, which already has torch: keeping it"
    "$base_python" -m venv --system-site-packages "$venv"
  else
    log "creating $venv"
    "$base_python" -m venv "$venv"
  fi
fi
py="$venv/bin/python"
pip=("$py" -m pip install --disable-pip-version-check --quiet)

# torch + torchvision: a working pair means torchvision's compiled ops load (nms is registered).
if "$py" -c 'import torch, torchvision; torch.ops.torchvision.nms' >/dev/null 2>&1; then
  log "torch $("$py" -c 'import torch; print(torch.__version__)') already works: kept"
elif "$py" -c 'import torch' >/dev/null 2>&1; then
  log "error: torch $("$py" -c 'import torch; print(torch.__version__)') is installed but torchvision is"
  log "missing or does not match it (its ops do not load). Install the torchvision built for your torch,"
  log "or remove torch to let this script install torch and torchvision from PyPI."
  exit 1
else
  log "installing $torch_spec (a few GB, about a minute)"
  # shellcheck disable=SC2086
  "${pip[@]}" $torch_spec
fi

# detectron2: upstream publishes no wheel; sal-detectron2 is upstream a59f0563 built for cp310.
# Its pure-Python code runs on 3.11 without the C++ ops, so it is installed without its tag check.
if "$py" -c 'import detectron2' >/dev/null 2>&1; then
  log "detectron2 $("$py" -c 'import detectron2; print(detectron2.__version__)') already importable: kept"
else
  site=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  log "installing $detectron2_spec into $site"
  "${pip[@]}" --no-deps --only-binary=:all: --python-version 3.10 --upgrade --target "$site" "$detectron2_spec"
fi

# detectron2's own dependencies (model_zoo imports pkg_resources: setuptools < 81), then sna_det.
"${pip[@]}" "setuptools<81" wheel fvcore iopath pycocotools "omegaconf>=2.1,<2.4" "hydra-core>=1.1" \
  termcolor yacs tabulate cloudpickle tqdm tensorboard matplotlib packaging Pillow
"${pip[@]}" --no-build-isolation -e "$root[all,test]"
# Test data: the real VinBigData annotations (tests/real_vinbigdata.py) ship inside torchxrayvision's
# wheel; only its files are read (it is never imported), so its dependencies are not installed.
if ! "$py" -c 'import importlib.util as u, sys; sys.exit(u.find_spec("torchxrayvision") is None)'; then
  "${pip[@]}" --no-deps "torchxrayvision==1.5.7"
fi
# labelme's LabelFile and shape_to_mask, the reference of the labelme tests: without its dependencies
# (osam, scikit-image are for its GUI's AI tools); its Qt binding and the rest come with [test].
if ! "$py" -c 'import importlib.util as u, sys; sys.exit(u.find_spec("labelme") is None)'; then
  "${pip[@]}" --no-deps "labelme==6.3.1"
fi

# The tests' PACS and DICOM validator (tests/helpers/orthanc.py): Debian's Orthanc, its DICOMweb plugin
# and dicom3tools (dciodvfy), installed when missing on a machine with apt where this runs as root;
# elsewhere the missing ones are named (the tests that need them fail, naming them too).
apt_missing=()
[ -x /usr/sbin/Orthanc ] || apt_missing+=(orthanc)
[ -f /usr/share/orthanc/plugins/libOrthancDicomWeb.so ] || apt_missing+=(orthanc-dicomweb)
command -v dciodvfy >/dev/null 2>&1 || apt_missing+=(dicom3tools)
if [ ${#apt_missing[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    log "installing ${apt_missing[*]} (apt-get)"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${apt_missing[@]}" >&2
  else
    log "warning: ${apt_missing[*]} missing (needs root and apt): tests/engine/test_dicom_sr.py will fail"
    log "         install them with: sudo apt-get install ${apt_missing[*]}"
  fi
fi

log "ready: $py"
echo "$py"
