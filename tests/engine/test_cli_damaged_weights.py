"""Issue 20, untrusted weights from the command line: every command that takes ``--model FILE``
answers a damaged weights file with exit 2 and one ``error:`` line naming it, within 30 s and 3 GB,
before the network is built (the reader-level checks are in ``test_weights_validation.py``)."""
from __future__ import annotations

import pytest
import torch

from tests.engine.test_cli_damaged_commands import DATA, assert_exit_2_naming
from tests.engine.test_weights_validation import _good, _write

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not (DATA / "ecg/mitdb/100.hea").is_file(),
                                                   reason="shared data not present")]


def _huge(tmp_path):
    net, meta = _good(tmp_path)
    meta["hparams"] = {**meta["hparams"], "spatial_dims": 2, "channels": [60000, 60000], "kernel_size": 3}
    return _write(tmp_path / "huge.safetensors", net.state_dict(), meta)


def _not_json(tmp_path):
    net, _ = _good(tmp_path)
    return _write(tmp_path / "notjson.safetensors", net.state_dict(), "{not json")


def _float64(tmp_path):
    net, meta = _good(tmp_path)
    return _write(tmp_path / "f64.safetensors", {k: v.double() for k, v in net.state_dict().items()}, meta)


def _nan(tmp_path):
    net, meta = _good(tmp_path)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    next(v for v in state.values() if v.is_floating_point() and v.ndim > 1).view(-1)[0] = float("nan")
    return _write(tmp_path / "nan.safetensors", state, meta)


def _truncated(tmp_path):
    net, meta = _good(tmp_path)
    p = _write(tmp_path / "cut.safetensors", net.state_dict(), meta)
    p.write_bytes(p.read_bytes()[:-64])
    return p


def _pickle(tmp_path):
    p = tmp_path / "pickled.safetensors"
    torch.save({"x": torch.zeros(2)}, p)
    return p


WEIGHTS = {"huge": _huge, "not-json": _not_json, "float64": _float64, "nan": _nan, "truncated": _truncated,
           "pickle": _pickle}
#: Each command with an input it accepts (the weights are the only thing wrong).
COMMANDS = {
    "denoise": [str(DATA / "ecg/mitdb/100.hea")],
    "reconstruct": [str(DATA / "ecg/mitdb/100.hea")],
    "score-beats": [str(DATA / "ecg/mitdb/100.hea")],
    "score-segments": [str(DATA / "eeg/eegmmidb/S001R04.edf")],
    "detect-nuclei": [str(DATA / "histo/crchisto/img1/img1.png"), "--mpp", "0.5"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("defect", sorted(WEIGHTS))
def test_damaged_weights_exit_2_naming_the_file(tmp_path, defect, command):
    bad = WEIGHTS[defect](tmp_path)
    assert_exit_2_naming([command, *COMMANDS[command], "--model", str(bad), "--out", str(tmp_path / "out")], bad)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
