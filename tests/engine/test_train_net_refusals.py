"""tools/train_net.py's answers to two mistakes: --main with a dataset root that is not prepared (one
line, exit 1, nothing trained, no OUTPUT_DIR), and Ctrl-C (the line says how to continue: --resume)."""

import detectron2.engine
from helpers import ROOT, run_main

DEMO = ROOT / "configs" / "demo" / "faster_rcnn_R_18_FPN_demo.yaml"


def test_main_with_a_root_that_is_not_prepared_stops_instead_of_training_the_demo(tmp_path, capsys):
    typo = tmp_path / "vindr_cxr_typo"
    code = run_main("tools/train_net.py", "--main", "DATASETS.ROOTS.VINDR_CXR", typo, "OUTPUT_DIR", tmp_path / "run")
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and err[-1].startswith("error: dataset 'vindr_cxr_train': json_file ")
    assert str(typo) in err[-1] and "DATASETS.ROOTS.VINDR_CXR was given" in err[-1]
    assert not any("training the demo" in line for line in err) and not (tmp_path / "run").exists()


def test_ctrl_c_during_training_says_to_resume(tmp_path, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(detectron2.engine, "launch", interrupted)  # Ctrl-C once training has started
    code = run_main("tools/train_net.py", "--config-file", DEMO, "MODEL.DEVICE", "cpu", "OUTPUT_DIR", tmp_path / "r")
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 130 and err[-1] == "interrupted: to continue from the last checkpoint, add --resume to the command"
