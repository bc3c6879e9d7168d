"""Scores as WFDB and EDF+ annotations, and H&E maps as pyramidal OME-TIFF at the slide's scale."""
from __future__ import annotations

import numpy as np
import pytest

from engine.data import Signal
from engine.io import read
from engine.results import BeatScores, SegmentScores


@pytest.fixture(scope="module")
def ecg(data_dir):
    rec = read(str(data_dir / "ecg/mitdb/100"))
    return Signal.from_array(rec.read(0, 3600), sfreq=rec.sfreq, modality="ecg", channels=rec.channels,
                             path=rec.path)


def _beats():
    return BeatScores(sample=np.array([77, 370, 662]), symbol=("N", "V", ""),
                      score=np.array([0.2, 3.5, 0.4], np.float32), model="ecg-beats", sha256="ab" * 32,
                      threshold=1.0)


def test_wfdb_annotations_carry_scores(ecg, tmp_path):
    import wfdb

    from engine.export.signal_annotations import score_annotations, write_wfdb_annotations

    p = write_wfdb_annotations(score_annotations(_beats(), ecg.sfreq), ecg.sfreq, tmp_path, "r100")
    ann = wfdb.rdann(str(tmp_path / "r100"), p.suffix[1:])
    assert list(ann.sample) == [77, 370, 662] and ann.fs == ecg.sfreq
    assert ann.aux_note[1] == "beat V score=3.5 abnormal" and ann.aux_note[0] == "beat N score=0.2"


def test_edf_annotations_read_by_mne(ecg, tmp_path):
    import mne

    from engine.export.signal_annotations import score_annotations, write_edf_annotations

    seg = SegmentScores(start=np.array([0, 1800]), stop=np.array([1800, 3600]), score=np.array([0.3, 2.0]),
                        label=np.array([0, 1]), model="m", sha256="cd" * 32)
    anomaly = np.zeros((2, 3600), np.float32)
    anomaly[1, 360:540] = 4.0
    anns = score_annotations(seg, ecg.sfreq) + score_annotations(anomaly, ecg.sfreq)
    m = mne.read_annotations(write_edf_annotations(ecg, anns, tmp_path / "r.edf"))
    got = sorted(zip(m.onset.round(4), m.duration.round(4), m.description))
    assert got == [(0.0, 5.0, "segment score=0.3"), (1.0, 0.5, "anomaly score=4"),
                   (5.0, 5.0, "segment score=2 abnormal")]
    raw = mne.io.read_raw_edf(tmp_path / "r.edf", verbose="error")
    assert raw.n_times == 3600 and raw.ch_names == list(ecg.channels)


def test_pyramid_tiff_levels_and_pixel_size(data_dir, tmp_path):
    import tifffile

    from engine.export.tiff_pyramid import write_pyramid_tiff

    mpp = 0.25  # MoNuSeg: 40x; the PNG does not say, so it is given as a reader option
    he = read(str(data_dir / "histo/monuseg/TCGA-2Z-A9J9-01A-01-TS1.png"), mpp=mpp)
    assert he.mpp == mpp and max(he.shape[:2]) > 512
    amap = np.random.default_rng(0).random(he.shape[:2], dtype=np.float32) * 2
    p = write_pyramid_tiff(he, amap, tmp_path / "a.ome.tif", provenance={"model": {"name": "histo-cae"}})
    with tifffile.TiffFile(p) as tf:
        assert tf.is_ome
        levels = tf.series[0].levels
        assert len(levels) >= 2 and levels[1].shape == (-(-he.shape[0] // 2), -(-he.shape[1] // 2))
        np.testing.assert_array_equal(levels[0].asarray(), amap)
        page = tf.pages[0]
        assert page.is_tiled and page.tags["ResolutionUnit"].value == 3  # centimetre
        x = page.tags["XResolution"].value
        assert x[0] / x[1] == pytest.approx(1e4 / mpp, rel=1e-6)
        sub = tf.series[0].levels[1].keyframe
        xs = sub.tags["XResolution"].value
        assert xs[0] / xs[1] == pytest.approx(1e4 / (2 * mpp), rel=1e-3)
        assert f'PhysicalSizeX="{mpp}"' in tf.ome_metadata


def _result(sig):
    from engine.results import AnomalyMap, Reconstruction, ReconstructionResult

    an = np.zeros(sig.shape, np.float32)
    an[0, 720:900] = 3.0
    return ReconstructionResult(Reconstruction(sig.data * 0.9, "mV", "ecg-dae", "ef" * 32),
                                AnomalyMap(an, {}, "ecg-dae", "ef" * 32))


def test_native_signal_export_wfdb_and_edf(ecg, tmp_path):
    import json

    import mne
    import wfdb

    from engine.export import check_formats, export_extra
    from engine.export.signals import write_wfdb

    write_wfdb(ecg, tmp_path / "in", "rec", annotations=False)
    wf = read(str(tmp_path / "in" / "rec"))
    paths = export_extra(_result(wf), wf, tmp_path / "w", check_formats("native", wf), stem="rec")
    assert {p.name for p in paths} == {"rec_recon.hea", "rec_recon.dat", "rec_recon.latent", "rec.export.json"}
    ann = wfdb.rdann(str(tmp_path / "w" / "rec_recon"), "latent")
    assert list(ann.sample) == [720] and ann.aux_note == ["anomaly score=3 dur=0.5s"]
    assert json.loads((tmp_path / "w" / "rec.export.json").read_text())["model"]["sha256"] == "ef" * 32
    mem = Signal.from_array(ecg.data, sfreq=ecg.sfreq, modality="ecg", channels=ecg.channels)  # not WFDB: EDF+
    export_extra(_result(mem), mem, tmp_path / "e", ("native",), stem="mem")
    m = mne.read_annotations(tmp_path / "e" / "mem.recon.edf")
    assert list(m.description) == ["anomaly score=3"] and m.onset[0] == pytest.approx(2.0)


def test_reconstruct_rerun_with_other_formats_leaves_no_stale_files(ecg, tmp_path):
    """A second run with fewer --formats removes the first run's files of the formats it drops."""
    from engine.export.signals import write_wfdb
    from engine.tasks.reconstruct import write_reconstruction

    write_wfdb(ecg, tmp_path / "in", "rec", annotations=False)
    wf = read(str(tmp_path / "in" / "rec"))
    out = tmp_path / "out"
    first = write_reconstruction(_result(wf), wf, out, formats="native,npy")
    assert {p.name for p in first} <= {p.name for p in out.iterdir()}
    assert {"rec_recon.hea", "rec_recon.dat", "rec.recon.npy"} <= {p.name for p in first}
    (out / "notes.txt").write_text("the user's own file")
    second = write_reconstruction(_result(wf), wf, out, formats="npy")
    names = {p.name for p in out.iterdir()}
    assert names == {p.name for p in second} | {"notes.txt"}
    assert names == {"rec.recon.npy", "rec.anomaly.npy", "rec.summary.json", "notes.txt"}
