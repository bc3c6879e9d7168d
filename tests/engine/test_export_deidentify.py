"""``python -m engine deidentify``: DICOM (Annex E basic profile via dicognito), EDF and WFDB copies."""
from __future__ import annotations

import shutil

import pydicom
import pytest

from engine._shared.files import sha256_file
from engine.cli import main
from engine.io import read

IDENTIFYING = ("PatientName", "PatientID", "PatientBirthDate", "StudyDate", "SeriesDate", "AcquisitionDate",
               "ContentDate", "InstitutionName")


def _hashes(folder):
    return {p: sha256_file(p) for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def ct_copy(data_dir, tmp_path_factory):
    src = data_dir / "ct/dcmqi_liver_ct3"
    out = tmp_path_factory.mktemp("deid")
    before = _hashes(src)
    assert main(["deidentify", str(src), "--out", str(out / "basic")]) == 0
    assert _hashes(src) == before  # the inputs are untouched
    return src, out / "basic"


def test_copy_is_one_series_with_the_same_pixels(ct_copy):
    src, out = ct_copy
    a, b = read(str(src)), read(str(out))
    assert b.shape == a.shape and (b.array == a.array).all()
    assert b.series_uid != a.series_uid  # remapped ...
    seg = next(s for s in b.series if s.modality == "SEG")
    ref = pydicom.dcmread(seg.files[0]).ReferencedSeriesSequence[0]
    assert ref.SeriesInstanceUID == b.series_uid  # ... the same way in every file: the SEG still points at it


def test_no_identifiers_dates_or_private_tags(ct_copy):
    src, out = ct_copy
    originals = {}
    for f in sorted(src.glob("*.dcm")):
        ds = pydicom.dcmread(f)
        for kw in IDENTIFYING:
            if str(ds.get(kw, "")).strip():
                originals[kw] = str(ds.get(kw))
    assert {"PatientName", "PatientID", "StudyDate"} <= set(originals)
    assert any(e.tag.is_private for e in pydicom.dcmread(src / "01.dcm").iterall())
    for f in sorted(out.glob("*.dcm")):
        raw = f.read_bytes()
        ds = pydicom.dcmread(f)
        for kw, value in originals.items():
            assert value.encode() not in raw, (kw, f.name)
        for kw in ("PatientBirthDate", "StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate"):
            assert not str(ds.get(kw, "")).strip(), kw
        assert "InstitutionName" not in ds
        assert not any(e.tag.is_private for e in ds.iterall())
        assert ds.PatientIdentityRemoved == "YES"
        assert ds.DeidentificationMethodCodeSequence[0].CodeValue == "113100"


def test_retain_dates_and_uids(data_dir, tmp_path):
    src = data_dir / "ct/dcmqi_liver_ct3/01.dcm"
    assert main(["deidentify", str(src), "--out", str(tmp_path / "d"), "--profile", "retain-dates"]) == 0
    assert main(["deidentify", str(src), "--out", str(tmp_path / "u"), "--profile", "retain-uids"]) == 0
    orig = pydicom.dcmread(src)
    d = pydicom.dcmread(next((tmp_path / "d").glob("*.dcm")))
    u = pydicom.dcmread(next((tmp_path / "u").glob("*.dcm")))
    assert d.StudyDate == orig.StudyDate and d.SOPInstanceUID != orig.SOPInstanceUID
    assert u.SOPInstanceUID == orig.SOPInstanceUID and not u.get("StudyDate")
    assert str(d.PatientName) != str(orig.PatientName) and str(u.PatientName) != str(orig.PatientName)


def test_burned_in_annotation_is_refused(data_dir, tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    ds = pydicom.dcmread(data_dir / "ct/dcmqi_liver_ct3/01.dcm")
    ds.BurnedInAnnotation = "YES"
    ds.save_as(src / "burned.dcm")
    assert main(["deidentify", str(src), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "burned.dcm" in err and "BurnedInAnnotation is YES" in err
    assert not (tmp_path / "out").exists()
    assert main(["deidentify", str(src), "--out", str(tmp_path / "out2"), "--allow-burned-in"]) == 0


def test_burned_in_message_names_the_file(data_dir, tmp_path):
    from engine.errors import ReadError
    from engine.export.deidentify import deidentify

    src = tmp_path / "in"
    src.mkdir()
    ds = pydicom.dcmread(data_dir / "ct/dcmqi_liver_ct3/01.dcm")
    ds.BurnedInAnnotation = "YES"
    ds.save_as(src / "burned.dcm")
    with pytest.raises(ReadError, match=r"burned\.dcm.*BurnedInAnnotation is YES"):
        deidentify(src, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_edf_patient_and_start_date(data_dir, tmp_path):
    import edfio
    import mne

    src = data_dir / "eeg/eegmmidb/S001R03.edf"
    before = sha256_file(src)
    assert main(["deidentify", str(src), "--out", str(tmp_path)]) == 0
    assert sha256_file(src) == before
    doc = edfio.read_edf(tmp_path / src.name)
    assert doc.patient.code == "X" and doc.patient.name == "X"
    with pytest.raises(edfio.AnonymizedDateError):
        doc.recording.startdate  # noqa: B018 - "Startdate X": no date in the recording field
    raw_in = mne.io.read_raw_edf(src, verbose="error")
    raw_out = mne.io.read_raw_edf(tmp_path / src.name, verbose="error")
    assert raw_in.info["meas_date"].year != 1985 and raw_out.info["meas_date"].year == 1985
    assert raw_out.n_times == raw_in.n_times and len(raw_out.annotations) == len(raw_in.annotations)


def test_wfdb_comments_dropped_samples_kept(data_dir, tmp_path):
    import wfdb

    rec = tmp_path / "in" / "100"
    rec.parent.mkdir()
    for ext in ("hea", "dat", "atr"):
        shutil.copyfile(data_dir / f"ecg/mitdb/100.{ext}", rec.parent / f"100.{ext}")
    assert wfdb.rdheader(str(rec)).comments  # MIT-BIH headers hold age, sex, medication
    before = _hashes(rec.parent)
    assert main(["deidentify", str(rec) + ".hea", "--out", str(tmp_path / "out")]) == 0
    assert _hashes(rec.parent) == before
    hdr = wfdb.rdheader(str(tmp_path / "out" / "100"))
    assert not hdr.comments and hdr.base_date is None
    assert sha256_file(tmp_path / "out/100.dat") == sha256_file(rec.parent / "100.dat")
    a = wfdb.rdrecord(str(tmp_path / "out" / "100"), sampto=1000).p_signal
    b = wfdb.rdrecord(str(rec), sampto=1000).p_signal
    assert (a == b).all()


def test_bad_input_and_output_inside_input(data_dir, tmp_path, capsys):
    assert main(["deidentify", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    assert "no such file" in capsys.readouterr().err
    src = tmp_path / "src"
    shutil.copytree(data_dir / "ct/dcmqi_liver_ct3", src)
    assert main(["deidentify", str(src), "--out", str(src / "deid")]) == 2
    assert "inside the input" in capsys.readouterr().err
