"""``reconstruct --formats``: the bundled CT model on 3 real slices, written as NIfTI and DICOM."""
from __future__ import annotations

import json

import pydicom
import pytest
from export_helpers import dciodvfy_errors, needs_dciodvfy
from torch_helpers import one_torch_thread  # noqa: F401 (autouse fixture)

from engine.cli import main
from engine.weights import list_bundled


@pytest.fixture(scope="module")
def ct_out(data_dir, tmp_path_factory):
    if "ct-dae" not in {r["name"] for r in list_bundled()}:
        pytest.skip("bundled model ct-dae is not installed (resources/models/manifest.json)")
    out = tmp_path_factory.mktemp("fmt")
    code = main(["reconstruct", str(data_dir / "ct/dcmqi_liver_ct3"), "--out", str(out), "--device", "cpu",
                 "--formats", "tiff,nifti,dicom-pm,dicom-seg,dicom-sc"])
    assert code == 0
    return out


def test_all_image_formats_written_with_provenance(ct_out):
    import engine

    names = {p.name for p in ct_out.iterdir()}
    stem = "dcmqi_liver_ct3"
    assert {f"{stem}.{k}" for k in ("recon.tif", "anomaly.tif", "recon.nii.gz", "anomaly.nii.gz", "anomaly.pm.dcm",
                                    "anomaly.seg.dcm", "overlay.sc.dcm", "export.json", "summary.json")} <= names
    prov = json.loads((ct_out / f"{stem}.export.json").read_text())
    assert prov["software_version"] == engine.__version__ and prov["model"]["name"] == "ct-dae"
    assert len(prov["model"]["sha256"]) == 64 and len(prov["input"]["sha256"]) == 3 and prov["created"]
    assert set(prov["outputs"]) >= {f"{stem}.anomaly.pm.dcm", f"{stem}.recon.nii.gz"}
    summary = json.loads((ct_out / f"{stem}.summary.json").read_text())
    assert f"{stem}.anomaly.seg.dcm" in summary["outputs"]
    for f in ct_out.glob("*.dcm"):
        ds = pydicom.dcmread(f)
        assert str(ds.PatientName) == "" and ds.PatientID == "" and ds.ManufacturerModelName == "ct-dae"
        texts = [str(e.value) for e in ds.iterall() if e.VR in ("PN", "LO", "SH", "LT", "ST", "UT", "DA")]
        assert not any("JANCT000" in t or t == "99000" for t in texts), f.name
    for f in ct_out.glob("*.nii.gz"):
        import gzip

        assert b"JANCT000" not in gzip.decompress(f.read_bytes())


@needs_dciodvfy
def test_written_dicom_validates(ct_out):
    for f in sorted(ct_out.glob("*.dcm")):
        errors, out = dciodvfy_errors(f)
        assert not errors, f"{f.name}:\n{out}"


def test_default_is_todays_outputs_and_bad_format_is_refused(data_dir, tmp_path, capsys):
    path = str(data_dir / "ct/dcmqi_liver_ct3")
    assert main(["reconstruct", path, "--out", str(tmp_path), "--formats", "tiff,dicom-rt"]) == 2
    err = capsys.readouterr().err
    assert "unknown output format 'dicom-rt' for images" in err and "dicom-seg" in err
    assert not list(tmp_path.iterdir())  # refused before any inference or output
    assert main(["reconstruct", str(data_dir / "ecg/mitdb/100"), "--out", str(tmp_path), "--formats", "nifti"]) == 2
    assert "valid for signals: native, npy" in capsys.readouterr().err
    assert main(["reconstruct", str(data_dir / "histo/crchisto/img4/img4.png"), "--out", str(tmp_path),
                 "--formats", "dicom-pm"]) == 2
    assert "needs a CT read from DICOM" in capsys.readouterr().err


def test_check_formats_defaults(data_dir):
    from engine.export import check_formats
    from engine.io import read

    ct = read(str(data_dir / "ct/dcmqi_liver_ct3"))
    assert check_formats(None, ct) == ("tiff",)
    assert check_formats(" NIfTI , dicom-seg,nifti", ct) == ("nifti", "dicom-seg")
