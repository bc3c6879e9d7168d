"""The optimised denoise path (BatchNorm folded, thread policy) against the network as trained, on real MIT-BIH."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
from ecg_noise import load_noise, mix_at_snr, noise_segment, snr_db

from engine.data import Signal

#: Folded vs unfolded outputs (mV): float32 rounding of the re-associated conv+BN arithmetic.
FOLD_ATOL_MV = 1e-4


def _run(sig, fold_bn, bf16=False):
    from engine.jobs import run_job
    from engine.tasks.denoise import denoise_task

    return run_job(denoise_task(sig, device="cpu", fold_bn=fold_bn, bf16=bf16))


def test_folded_denoise_matches_unfolded_on_a_real_record(data_dir):
    from engine.io import read

    rec = read(str(data_dir / "ecg" / "mitdb" / "100"))
    x = rec.read(0, 60 * 360).astype(np.float32)  # first minute, both leads
    sig = Signal.from_array(x, sfreq=rec.sfreq, modality="ecg", channels=rec.channels)
    ref, fast = _run(sig, False), _run(sig, True)
    assert fast.params["batchnorm_folded"] and not ref.params["batchnorm_folded"]
    diff = np.max(np.abs(fast.signal.data - ref.signal.data))
    assert diff < FOLD_ATOL_MV, diff
    # the SNR improvement on noisy input (NSTDB test-half noise at 0 dB) is the same to 0.01 dB
    c = x[0] - x[0].mean()
    noisy = mix_at_snr(c, noise_segment(load_noise(data_dir / "ecg" / "nstdb", "ma", part="test"), c.size,
                                        np.random.default_rng(3)), 0.0)
    nsig = Signal.from_array(noisy[None], sfreq=rec.sfreq, modality="ecg", channels=("MLII",))
    gain_ref = snr_db(c, _run(nsig, False).signal.data[0]) - snr_db(c, noisy)
    gain_fast = snr_db(c, _run(nsig, True).signal.data[0]) - snr_db(c, noisy)
    assert gain_ref > 3.0
    assert abs(gain_fast - gain_ref) < 0.01, (gain_ref, gain_fast)
    assert fast.params["threads"]["intra_op_threads"] >= 1


def test_bf16_denoise_keeps_the_snr_gain_on_a_real_record(data_dir):
    """bf16 autocast (the ECG default on CPUs with native bf16): the SNR gain on MIT-BIH 100 with
    NSTDB muscle and baseline-wander noise at 0 and 6 dB is float32's within 0.05 dB."""
    from engine.inference.optimize import cpu_has_bf16
    from engine.io import read

    rec = read(str(data_dir / "ecg" / "mitdb" / "100"))
    c = rec.read(0, 60 * 360)[0].astype(np.float64)
    c -= c.mean()
    rng = np.random.default_rng(5)
    rows = [mix_at_snr(c, noise_segment(load_noise(data_dir / "ecg" / "nstdb", kind, part="test"), c.size, rng), s)
            for kind in ("ma", "bw") for s in (0.0, 6.0)]
    sig = Signal.from_array(np.asarray(rows, np.float32), sfreq=rec.sfreq, modality="ecg")
    f32, b16 = _run(sig, True, False), _run(sig, True, True)
    assert (f32.params["precision"], b16.params["precision"]) == ("float32", "bf16 autocast")
    assert b16.signal.data.dtype == np.float32 and np.isfinite(b16.signal.data).all()
    for i, x in enumerate(rows):
        g32 = snr_db(c, f32.signal.data[i]) - snr_db(c, x)
        g16 = snr_db(c, b16.signal.data[i]) - snr_db(c, x)
        assert g32 > 1.0 and abs(g16 - g32) < 0.05, (i, g32, g16)  # measured: 1.6-11.1 dB, |diff| <= 0.03
    auto = _run(sig, True, None)
    assert auto.params["precision"] == ("bf16 autocast" if cpu_has_bf16() else "float32")
    np.testing.assert_array_equal(auto.signal.data, (b16 if cpu_has_bf16() else f32).signal.data)


def test_import_engine_sets_passive_openmp_waiting():
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "KMP_BLOCKTIME")}
    out = subprocess.run([sys.executable, "-c", "import os, engine; print(os.environ['OMP_WAIT_POLICY'],"
                          " os.environ['KMP_BLOCKTIME'])"], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["PASSIVE", "0"]
    env["OMP_WAIT_POLICY"] = "ACTIVE"  # a user's own setting is kept
    out = subprocess.run([sys.executable, "-c", "import os, engine; print(os.environ['OMP_WAIT_POLICY'])"],
                         env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ACTIVE"


def test_sys_info_states_the_thread_policy(capsys):
    from engine.cli import main

    assert main(["sys-info"]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("torch threads"))
    assert "policy default" in line and "usable cores" in line
