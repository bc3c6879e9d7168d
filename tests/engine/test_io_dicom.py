"""DICOM CT reader: every shared CT set against pydicom read directly, series choice and
ordering, the registry, window presets. (Codecs/DICOMDIR: test_io_dicom_codecs.py;
damaged input and the CLI: test_io_dicom_damaged.py.)"""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest

import engine.io
from engine.ct_windows import WINDOW_PRESETS, apply_window, preset, window_range
from engine.errors import ReadError, UnsupportedFormatError
from engine.io.dicom import list_series, read_dicom, read_series_thumbnail

from dicom_helpers import LIDC, LIVER, LUNG_DX, check_against_pydicom, copy_slices, hu_of


def _csv_z(folder: Path) -> list[float]:
    with open(folder / "slices.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    seen, z = set(), []
    for r in rows:  # one row per box: keep one per slice, in file order (head first)
        if r["sop_instance_uid"] not in seen:
            seen.add(r["sop_instance_uid"])
            z.append(float(r["z_mm"]))
    return z


@pytest.fixture(scope="module")
def lidc(data_dir):
    return read_dicom(data_dir / LIDC)


def test_lidc_folder(lidc, data_dir):
    folder = data_dir / LIDC
    assert lidc.shape == (77, 512, 512)
    assert lidc.spacing == pytest.approx((2.5, 0.703125, 0.703125))
    z = [p[2] for p in lidc.metadata["plane_positions"]]
    assert z == pytest.approx(_csv_z(folder))  # head first, like slices.csv
    assert z[0] > z[-1] and lidc.metadata["slice_direction"] == pytest.approx((0, 0, -1))
    check_against_pydicom(lidc, sorted(folder.glob("*.dcm")))
    # outside-FOV padding is kept, not clipped, and reported
    assert lidc.array.min() == -2048 and lidc.metadata["outside_fov_hu"] == -2048
    assert lidc.metadata["Manufacturer"] == "GE MEDICAL SYSTEMS" and lidc.metadata["KVP"] == 120
    assert len(lidc.series) == 1 and lidc.series[0].n_instances == 77 and lidc.series_uid == lidc.series[0].uid


def test_lung_dx_ct_and_parent_folder(data_dir):
    a = read_dicom(data_dir / LUNG_DX / "CT")
    b = read_dicom(data_dir / LUNG_DX)  # Annotation/*.xml and slices.csv beside: skipped
    assert a.shape == b.shape == (30, 512, 512)
    assert a.spacing == b.spacing and a.spacing[0] == pytest.approx(8.0)
    np.testing.assert_array_equal(a.array, b.array)
    assert [p[2] for p in b.metadata["plane_positions"]] == pytest.approx(_csv_z(data_dir / LUNG_DX))
    check_against_pydicom(b, sorted((data_dir / LUNG_DX / "CT").glob("*.dcm")))
    assert b.metadata["ConvolutionKernel"] == "B40f" and "skipped_files" not in b.metadata


def test_liver_folder_chooses_ct_and_lists_seg(data_dir):
    img = read_dicom(data_dir / LIVER)
    assert img.shape == (3, 512, 512)
    check_against_pydicom(img, [data_dir / LIVER / f"0{i}.dcm" for i in (1, 2, 3)])
    mods = sorted(s.modality for s in img.series)
    assert mods == ["CT", "SEG"]
    seg = next(s for s in img.series if s.modality == "SEG")
    assert img.series_uid != seg.uid and seg.n_instances == 1
    assert img.metadata["outside_fov_hu"] == -3024 and img.array.min() == -3024
    with pytest.raises(UnsupportedFormatError, match="Segmentation"):
        read_dicom(data_dir / LIVER, series_uid=seg.uid)
    with pytest.raises(ReadError, match="valid: .*" + img.series_uid.replace(".", r"\.")):
        read_dicom(data_dir / LIVER, series_uid="1.2.3.4.5")
    with pytest.raises(UnsupportedFormatError, match="liver.dcm.*Segmentation.*open the CT series"):
        read_dicom(data_dir / LIVER / "liver.dcm")
    again = read_dicom(data_dir / LIVER, series_uid=img.series_uid, sfreq=100.0)  # unknown options ignored
    np.testing.assert_array_equal(again.array, img.array)


def test_single_slice(data_dir):
    f = data_dir / "ct/single/CT_small.dcm"
    img = read_dicom(f)
    assert img.shape == (1, 128, 128) and img.spacing[0] == pytest.approx(5.0)
    check_against_pydicom(img, [f])


def test_enhanced_ct_multiframe(data_dir):
    f = data_dir / "ct/single/eCT_Supplemental.dcm"
    img = read_dicom(f)
    ds = pydicom.dcmread(f)
    assert img.shape == (2, 512, 512) and img.metadata["SOPClass"] == "Enhanced CT Image Storage"
    frames = ds.pixel_array
    per = ds.PerFrameFunctionalGroupsSequence
    z = [float(per[i].PlanePositionSequence[0].ImagePositionPatient[2]) for i in range(2)]
    order = np.argsort(z)[::-1]  # head first
    fg = ds.SharedFunctionalGroupsSequence[0]
    pvt = (per[0].get("PixelValueTransformationSequence") or fg.PixelValueTransformationSequence)[0]
    ref = (frames[order] * float(pvt.RescaleSlope) + float(pvt.RescaleIntercept)).astype(np.float32)
    np.testing.assert_array_equal(img.array, ref)
    assert img.spacing == pytest.approx((abs(z[0] - z[1]),
                                         *map(float, fg.PixelMeasuresSequence[0].PixelSpacing)))
    assert img.origin[2] == pytest.approx(max(z))
    assert img.direction == pytest.approx([float(v) for v in fg.PlaneOrientationSequence[0].ImageOrientationPatient])


def test_folder_with_two_ct_series(data_dir, tmp_path):
    # nested folders, files without an extension, notes beside: grouped by SeriesInstanceUID
    lidc = copy_slices(data_dir, ["000026.dcm", "000011.dcm", "000062.dcm", "000096.dcm"], tmp_path / "a" / "b")
    dx = copy_slices(data_dir, ["1-04.dcm", "1-05.dcm"], tmp_path / "c", src=LUNG_DX + "/CT")
    dx[0].rename(tmp_path / "c" / "IM0001")
    (tmp_path / "c" / "README.txt").write_text("two slices\n")
    series = list_series(tmp_path)
    assert sorted(s.n_instances for s in series) == [2, 4]
    img = read_dicom(tmp_path)  # default: the CT series with the most slices
    check_against_pydicom(img, lidc)
    other = next(s.uid for s in series if s.n_instances == 2)
    img2 = read_dicom(tmp_path, series_uid=other)
    check_against_pydicom(img2, [tmp_path / "c" / "IM0001", dx[1]])
    assert img2.series_uid == other and {s.uid for s in img2.series} == {s.uid for s in series}


def test_series_listing_and_thumbnail(data_dir):
    series = list_series(data_dir / LIVER)
    ct = next(s for s in series if s.modality == "CT")
    assert (ct.n_instances, ct.rows, ct.cols) == (3, 512, 512)
    zs = [float(pydicom.dcmread(f, stop_before_pixels=True).ImagePositionPatient[2]) for f in ct.files]
    assert zs == sorted(zs, reverse=True)  # files in plane order, head first
    thumb = read_series_thumbnail(ct, size=128)
    middle = hu_of(pydicom.dcmread(ct.files[1]))
    assert thumb.dtype == np.float32 and thumb.shape == (128, 128)
    np.testing.assert_allclose(thumb, middle.reshape(128, 4, 128, 4).mean(axis=(1, 3)), rtol=1e-5)
    (ect,) = list_series(data_dir / "ct/single/eCT_Supplemental.dcm")  # one file, two frames
    assert ect.n_instances == 1 and read_series_thumbnail(ect, size=64).shape == (64, 64)


def test_irregular_gaps_are_reported(data_dir, tmp_path):
    copy_slices(data_dir, ["1-17.dcm", "1-03.dcm", "1-09.dcm"], tmp_path, src=LUNG_DX + "/CT")
    img = read_dicom(tmp_path)
    assert [p[2] for p in img.metadata["plane_positions"]] == [296.0, 248.0, 184.0]
    assert img.metadata["irregular_slice_spacing"] == (48.0, 64.0) and img.spacing[0] == 56.0


def test_order_falls_back_to_instance_number(data_dir, tmp_path):
    names = ["000026.dcm", "000011.dcm", "000062.dcm", "000096.dcm"]
    dss = [pydicom.dcmread(data_dir / LIDC / n) for n in names]
    for i, ds in enumerate(dss):
        del ds.ImagePositionPatient
        ds.save_as(tmp_path / f"x{i}.dcm")
    img = read_dicom(tmp_path)
    want = sorted(dss, key=lambda d: int(d.InstanceNumber))
    assert img.metadata["sop_instance_uids"] == tuple(d.SOPInstanceUID for d in want)
    assert "InstanceNumber" in img.metadata["plane_order"] and img.origin is None
    np.testing.assert_array_equal(img.array, np.stack([hu_of(d) for d in want]))


def test_file_without_preamble(data_dir, tmp_path):
    ds = pydicom.dcmread(data_dir / "ct/single/CT_small.dcm")
    ds.preamble = None
    out = tmp_path / "nopreamble"  # no extension either
    pydicom.dcmwrite(out, ds, enforce_file_format=False)
    assert out.read_bytes()[128:132] != b"DICM"
    np.testing.assert_array_equal(read_dicom(out).array[0], hu_of(ds))
    np.testing.assert_array_equal(read_dicom(tmp_path).array[0], hu_of(ds))


def test_other_modalities(tmp_path):
    from pydicom.data import get_testdata_file

    mr = get_testdata_file("MR_small.dcm")
    img = read_dicom(mr)
    ds = pydicom.dcmread(mr)
    assert img.modality == "mr" and img.units == "" and img.shape == (1, ds.Rows, ds.Columns)
    np.testing.assert_array_equal(img.array[0], ds.pixel_array.astype(np.float32))
    rt = get_testdata_file("rtstruct.dcm")
    with pytest.raises(UnsupportedFormatError, match="RT Structure Set"):
        read_dicom(rt)
    shutil.copy(rt, tmp_path / "rt.dcm")
    with pytest.raises(ReadError, match="no DICOM image series"):
        read_dicom(tmp_path)


# ---- registry and CLI --------------------------------------------------------------------


def test_registry_routes_folder(lidc, data_dir):
    img = engine.io.read(data_dir / LIDC, series_uid=None, mpp=0.5)
    assert img.shape == lidc.shape and img.series_uid == lidc.series_uid
    np.testing.assert_array_equal(img.array, lidc.array)


# ---- window presets ------------------------------------------------------------------------


def test_window_presets():
    assert WINDOW_PRESETS["lung"] == (-600, 1500) and WINDOW_PRESETS["mediastinum"] == (40, 400)
    assert WINDOW_PRESETS["brain"] == (40, 80)
    assert set(WINDOW_PRESETS) == {"lung", "mediastinum", "bone", "brain", "abdomen", "liver"}
    assert preset("Liver") == WINDOW_PRESETS["liver"]
    with pytest.raises(KeyError, match="valid: lung"):
        preset("heart")


@pytest.mark.parametrize("dtype", [np.int16, np.float32, np.float64])
def test_apply_window_known_answer(dtype):
    hu = np.array([[-2048, -160, -60, 40, 140, 240, 3000]], dtype=dtype)
    out = apply_window(hu, 40, 400)
    assert out.dtype == np.float32 and out.shape == hu.shape
    np.testing.assert_allclose(out[0], [0, 0, 0.25, 0.5, 0.75, 1, 1], atol=1e-6)
    assert window_range(-600, 1500) == (-1350, 150)
    with pytest.raises(ValueError):
        apply_window(hu, 40, 0)
