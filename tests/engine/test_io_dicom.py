"""DICOM CT reader: every shared CT set against pydicom read directly, compressed and
damaged copies made here, DICOMDIR, series choice, the registry, the CLI, window presets."""
from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest

import engine.io
from engine.ct_windows import WINDOW_PRESETS, apply_window, preset, window_range
from engine.errors import CorruptFileError, ReadError, UnsupportedFormatError
from engine.io.dicom import list_series, read_dicom, read_series_thumbnail

REPO = Path(__file__).resolve().parents[2]
LIDC = "ct/lidc_idri/LIDC-IDRI-0001"
LUNG_DX = "ct/lung_pet_ct_dx/Lung_Dx-A0002"
LIVER = "ct/dcmqi_liver_ct3"


def _hu(ds: pydicom.Dataset) -> np.ndarray:
    return (ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)).astype(np.float32)


def check_against_pydicom(img, files) -> None:
    """The shared check: the reader's volume equals pydicom's, slice by slice, head first."""
    dss = sorted((pydicom.dcmread(f) for f in files), key=lambda d: float(d.ImagePositionPatient[2]),
                 reverse=True)
    ref = np.stack([_hu(d) for d in dss])
    assert img.modality == "ct" and img.units == "HU" and img.dtype == "float32"
    assert img.array.dtype == np.float32 and img.shape == ref.shape == img.array.shape
    np.testing.assert_array_equal(img.array, ref)
    assert img.spacing[1:] == pytest.approx([float(v) for v in dss[0].PixelSpacing])
    assert img.origin == pytest.approx([float(v) for v in dss[0].ImagePositionPatient])
    assert img.direction == pytest.approx([float(v) for v in dss[0].ImageOrientationPatient])
    assert img.levels == (ref.shape[1:],)
    assert img.metadata["sop_instance_uids"] == tuple(d.SOPInstanceUID for d in dss)
    z = [float(d.ImagePositionPatient[2]) for d in dss]
    if len(z) > 1:  # the median gap (the gap itself when the slices are evenly spaced)
        assert img.spacing[0] == pytest.approx(float(np.median(-np.diff(z))), abs=1e-4)
    for forbidden in ("PatientName", "PatientID", "PatientBirthDate"):
        assert forbidden not in img.metadata


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


def _copy(data_dir, names, dest: Path, src=LIDC) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copy(data_dir / src / n, dest / n)) for n in names]


@pytest.mark.parametrize("syntax", ["RLELossless", "JPEG2000Lossless", "JPEGLSLossless"])
def test_compressed_copies_read_back_identical(data_dir, tmp_path, syntax):
    from pydicom import uid

    ts = getattr(uid, syntax)
    src = data_dir / LUNG_DX / "CT" / "1-12.dcm"  # unsigned 12-bit: every encoder here takes it
    ds = pydicom.dcmread(src)
    ref = _hu(ds)
    if syntax == "JPEGLSLossless":
        imagecodecs = pytest.importorskip("imagecodecs")
        from pydicom.encaps import encapsulate

        ds.PixelData = encapsulate([imagecodecs.jpegls_encode(ds.pixel_array)])
        ds["PixelData"].VR = "OB"
        ds.file_meta.TransferSyntaxUID = ts
    else:
        ds.compress(ts)
    out = tmp_path / "slice.dcm"
    ds.save_as(out)
    assert pydicom.dcmread(out).file_meta.TransferSyntaxUID == ts
    img = read_dicom(out)
    np.testing.assert_array_equal(img.array[0], ref)
    assert img.metadata["TransferSyntax"] == ts.name
    # and a signed 16-bit LIDC slice where pydicom's encoders accept it
    if syntax != "JPEGLSLossless":
        ds = pydicom.dcmread(data_dir / LIDC / "000026.dcm")
        ref = _hu(ds)
        ds.compress(ts)
        ds.save_as(tmp_path / "signed.dcm")
        np.testing.assert_array_equal(read_dicom(tmp_path / "signed.dcm").array[0], ref)


def _luminance(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


@pytest.mark.parametrize("name, same_as", [
    ("MR_small_RLE.dcm", "MR_small.dcm"),
    ("MR_small_jpeg_ls_lossless.dcm", "MR_small.dcm"),
    ("MR_small_jp2klossless.dcm", "MR_small.dcm"),
    ("JPGExtended.dcm", None),  # 12-bit JPEG Extended, NM
    ("JPEG2000.dcm", None),  # lossy JPEG 2000
    ("SC_rgb_jpeg_dcmtk.dcm", None),  # JPEG baseline YBR colour -> luminance
    ("image_dfl.dcm", None),  # Deflated Explicit VR
    ("ExplVR_BigEnd.dcm", None),  # Explicit VR Big Endian, RGB
    ("examples_ybr_color.dcm", None),  # 30-frame JPEG baseline colour
])
def test_pydicom_sample_syntaxes(name, same_as):
    """Every transfer syntax among pydicom's shipped samples: equal to pydicom's own decoding,
    and the lossless copies of MR_small equal to the uncompressed original."""
    from pydicom.data import get_testdata_file

    f = get_testdata_file(name)
    img = read_dicom(f)
    ds = pydicom.dcmread(f)
    ref = ds.pixel_array
    ref = _luminance(ref) if ds.SamplesPerPixel == 3 else ref.astype(np.float64)
    ref = ref * float(ds.get("RescaleSlope", 1)) + float(ds.get("RescaleIntercept", 0))
    np.testing.assert_array_equal(img.array, ref.reshape(img.shape).astype(np.float32))
    assert img.modality == ds.Modality.lower() and img.metadata["TransferSyntax"] == ds.file_meta.TransferSyntaxUID.name
    if same_as:
        np.testing.assert_array_equal(img.array, read_dicom(get_testdata_file(same_as)).array)


def _encode_ljpeg_sv1(img: np.ndarray, precision: int = 16) -> bytes:
    """Minimal lossless JPEG (ITU T.81 process 14, first-order prediction) of one 2-D plane."""
    x = np.asarray(img).astype(np.int64) & ((1 << precision) - 1)
    rows, cols = x.shape
    pred = np.empty_like(x)
    pred[0, 0] = 1 << (precision - 1)
    pred[0, 1:] = x[0, :-1]
    pred[1:, 0] = x[:-1, 0]
    pred[1:, 1:] = x[1:, :-1]
    diff = (x - pred) % (1 << 16)
    diff = np.where(diff >= 32768, diff - 65536, diff).ravel()
    mag = np.abs(diff)
    ssss = np.zeros(mag.shape, np.int64)
    nz = mag > 0
    ssss[nz] = np.floor(np.log2(mag[nz])).astype(np.int64) + 1
    # Huffman table: symbols 0..16 all get 5-bit codes 00000..10000
    bits = []
    for d, s in zip(diff.tolist(), ssss.tolist()):
        code = format(s, "05b")
        if s == 0 or s == 16:
            bits.append(code)
        else:
            v = d if d > 0 else d - 1
            bits.append(code + format(v & ((1 << s) - 1), f"0{s}b"))
    stream = "".join(bits)
    stream += "1" * (-len(stream) % 8)
    data = bytearray()
    for i in range(0, len(stream), 8):
        b = int(stream[i:i + 8], 2)
        data.append(b)
        if b == 0xFF:
            data.append(0)
    be = lambda n: int(n).to_bytes(2, "big")
    sof = bytes([precision]) + be(rows) + be(cols) + bytes([1, 1, 0x11, 0])
    counts = [0] * 16
    counts[4] = 17
    dht = bytes([0x00]) + bytes(counts) + bytes(range(17))
    sos = bytes([1, 1, 0x00, 1, 0, 0])
    out = b"\xff\xd8"
    out += b"\xff\xc3" + be(len(sof) + 2) + sof
    out += b"\xff\xc4" + be(len(dht) + 2) + dht
    out += b"\xff\xda" + be(len(sos) + 2) + sos + bytes(data) + b"\xff\xd9"
    return out


def test_lossless_jpeg_process14_ct_slice(data_dir, tmp_path):
    """JPEG Lossless SV1, the usual syntax of compressed CT archives: no encoder ships with
    pydicom, so a minimal one (above) writes it, checked first by imagecodecs' own decoder."""
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGLosslessSV1

    ds = pydicom.dcmread(data_dir / "ct/single/CT_small.dcm")
    ref = _hu(ds)
    stream = _encode_ljpeg_sv1(ds.pixel_array)
    imagecodecs = pytest.importorskip("imagecodecs")
    assert np.array_equal(imagecodecs.ljpeg_decode(stream).view(np.int16), ds.pixel_array)
    ds.PixelData = encapsulate([stream])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = JPEGLosslessSV1
    ds.save_as(tmp_path / "ll.dcm")
    img = read_dicom(tmp_path / "ll.dcm")
    assert img.metadata["TransferSyntax"] == JPEGLosslessSV1.name
    np.testing.assert_array_equal(img.array[0], ref)


def test_dicomdir(data_dir, tmp_path):
    from pydicom.fileset import FileSet

    files = [data_dir / LUNG_DX / "CT" / n for n in ("1-05.dcm", "1-03.dcm", "1-04.dcm")]
    fs = FileSet()
    for f in files:
        ds = pydicom.dcmread(f)
        for key, value in (("StudyID", "1"), ("StudyTime", "120000"), ("PatientID", "anon")):
            if not ds.get(key):  # the default STUDY/PATIENT records need these
                setattr(ds, key, value)
        fs.add(ds)
    fs.write(tmp_path / "set")  # files renamed to PT000000/ST000000/SE000000/IM00000n
    dicomdir = tmp_path / "set" / "DICOMDIR"
    assert dicomdir.is_file()
    for path in (dicomdir, tmp_path / "set"):
        img = engine.io.read(path)  # the registry routes DICOMDIR files and folders here
        check_against_pydicom(img, files)
    assert [s.n_instances for s in list_series(dicomdir)] == [3]
    # a file the DICOMDIR lists is gone: the folder is scanned instead and says so
    gone = next(f for f in (tmp_path / "set").rglob("IM*") if f.is_file())
    sop = pydicom.dcmread(gone, stop_before_pixels=True).SOPInstanceUID
    gone.unlink()
    img = read_dicom(dicomdir)
    assert img.shape[0] == 2 and sop not in img.metadata["sop_instance_uids"]
    assert img.metadata["skipped_files"] == 1


def test_folder_with_two_ct_series(data_dir, tmp_path):
    # nested folders, files without an extension, notes beside: grouped by SeriesInstanceUID
    lidc = _copy(data_dir, ["000026.dcm", "000011.dcm", "000062.dcm", "000096.dcm"], tmp_path / "a" / "b")
    dx = _copy(data_dir, ["1-04.dcm", "1-05.dcm"], tmp_path / "c", src=LUNG_DX + "/CT")
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
    middle = _hu(pydicom.dcmread(ct.files[1]))
    assert thumb.dtype == np.float32 and thumb.shape == (128, 128)
    np.testing.assert_allclose(thumb, middle.reshape(128, 4, 128, 4).mean(axis=(1, 3)), rtol=1e-5)
    (ect,) = list_series(data_dir / "ct/single/eCT_Supplemental.dcm")  # one file, two frames
    assert ect.n_instances == 1 and read_series_thumbnail(ect, size=64).shape == (64, 64)


def test_irregular_gaps_are_reported(data_dir, tmp_path):
    _copy(data_dir, ["1-17.dcm", "1-03.dcm", "1-09.dcm"], tmp_path, src=LUNG_DX + "/CT")
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
    np.testing.assert_array_equal(img.array, np.stack([_hu(d) for d in want]))


def test_file_without_preamble(data_dir, tmp_path):
    ds = pydicom.dcmread(data_dir / "ct/single/CT_small.dcm")
    ds.preamble = None
    out = tmp_path / "nopreamble"  # no extension either
    pydicom.dcmwrite(out, ds, enforce_file_format=False)
    assert out.read_bytes()[128:132] != b"DICM"
    np.testing.assert_array_equal(read_dicom(out).array[0], _hu(ds))
    np.testing.assert_array_equal(read_dicom(tmp_path).array[0], _hu(ds))


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


# ---- damaged and unsupported input -------------------------------------------------------


def _corrupt(kind: str, src: Path, out: Path) -> Path:
    raw = src.read_bytes()
    if kind == "truncated":
        out.write_bytes(raw[: len(raw) // 2])
    elif kind == "truncated-header":
        out.write_bytes(raw[:600])
    elif kind == "flipped-header":
        b = bytearray(raw)
        for i in range(140, 400):
            b[i] ^= 0xFF
        out.write_bytes(bytes(b))
    elif kind == "empty":
        out.write_bytes(b"")
    elif kind == "png":
        out.write_bytes(b"\x89PNG\r\n\x1a\n" + raw[:2000])
    return out


@pytest.mark.parametrize("kind, error, words", [
    ("truncated", CorruptFileError, "truncated"),
    ("truncated-header", CorruptFileError, "truncated"),
    ("flipped-header", CorruptFileError, "damaged"),
    ("empty", ReadError, "empty"),
    ("png", UnsupportedFormatError, ""),
])
def test_damaged_file_raises_read_error_naming_it(data_dir, tmp_path, kind, error, words):
    bad = _corrupt(kind, data_dir / LIDC / "000026.dcm", tmp_path / f"bad_{kind}.dcm")
    for reader in (read_dicom, engine.io.read):
        with pytest.raises(ReadError) as err:
            reader(bad)
        msg = str(err.value)
        assert bad.name in msg and "\n" not in msg and "Traceback" not in msg
        assert words in msg
    assert isinstance(err.value, error) or kind == "png"  # the registry names PNG itself
    with pytest.raises(error):
        read_dicom(bad)


def test_random_damage_never_escapes_as_a_library_error(data_dir, tmp_path, recwarn):
    # Flipped bytes and cuts anywhere in a real file: either a correct-shaped image
    # (the damage hit a value that does not matter) or a ReadError, nothing else.
    rng = np.random.default_rng(7)
    raw = (data_dir / "ct/single/CT_small.dcm").read_bytes()
    n_errors = 0
    for i in range(45):
        b = bytearray(raw)
        if i % 3 == 0:
            b = b[: int(rng.integers(1, len(b)))]
        else:
            at = rng.integers(128, 3000, size=int(rng.integers(1, 9)))
            for j in at:
                b[j] ^= int(rng.integers(1, 256))
        bad = tmp_path / f"fuzz{i}.dcm"
        bad.write_bytes(bytes(b))
        try:
            img = read_dicom(bad)
        except ReadError as exc:
            n_errors += 1
            assert bad.name in str(exc) and "\n" not in str(exc)
        else:
            assert img.array.ndim == 3 and img.array.dtype == np.float32
    assert n_errors >= 15  # the cuts alone are 15 damaged files
    assert not [w for w in recwarn if "pydicom" in str(w.filename)]  # no chatter for the CLI


def test_damaged_slice_in_a_series_is_named(data_dir, tmp_path):
    files = _copy(data_dir, ["000026.dcm", "000011.dcm", "000062.dcm"], tmp_path / "s")
    _corrupt("truncated", files[1], files[1])
    with pytest.raises(CorruptFileError, match=r"000011\.dcm.*truncated"):
        read_dicom(tmp_path / "s")
    # a damaged header is skipped while scanning, and counted
    files[1].write_bytes((data_dir / LIDC / "000011.dcm").read_bytes())
    _corrupt("flipped-header", data_dir / LIDC / "000096.dcm", tmp_path / "s" / "000096.dcm")
    img = read_dicom(tmp_path / "s")
    assert img.shape[0] == 3 and img.metadata["skipped_files"] == 1


def test_inconsistent_slice_sizes(data_dir, tmp_path):
    files = _copy(data_dir, ["000026.dcm", "000011.dcm", "000062.dcm"], tmp_path)
    ds = pydicom.dcmread(files[2])
    ds.PixelData = np.ascontiguousarray(ds.pixel_array[::2, ::2]).tobytes()
    ds.Rows, ds.Columns = 256, 256
    ds.save_as(files[2])
    with pytest.raises(ReadError, match="different sizes.*512x512 in 2.*256x256 in 1"):
        read_dicom(tmp_path)


@pytest.mark.parametrize("ts", ["1.2.840.10008.1.2.4.100", "1.2.840.10008.1.2.4.110"])
def test_unsupported_compression(data_dir, tmp_path, ts):
    from pydicom.uid import RLELossless

    ds = pydicom.dcmread(data_dir / "ct/single/CT_small.dcm")
    ds.compress(RLELossless)
    mpeg2 = "1.2.840.10008.1.2.4.100"
    ds.file_meta.TransferSyntaxUID = mpeg2  # a syntax pydicom knows but cannot decode
    out = tmp_path / "odd.dcm"
    ds.save_as(out)
    # JPEG XL (….4.110) is unknown to pydicom 3.0, which refuses to write it: patch the bytes
    raw = out.read_bytes()
    assert raw.count(mpeg2.encode()) == 1
    out.write_bytes(raw.replace(mpeg2.encode(), ts.encode()))
    for reader in (read_dicom, engine.io.read):
        with pytest.raises(UnsupportedFormatError, match=r"odd\.dcm.*" + ts.replace(".", r"\.")):
            reader(out)


def test_missing_decoder_plugin_says_what_to_install():
    # pylibjpeg made unimportable before pydicom loads: JPEG-LS then has no decoder at all
    code = ("import sys; sys.modules['pylibjpeg'] = None\n"
            "from pydicom.data import get_testdata_file\n"
            "from engine.io.dicom import read_dicom\n"
            "from engine.errors import UnsupportedFormatError\n"
            "try:\n    read_dicom(get_testdata_file('MR_small_jpeg_ls_lossless.dcm'))\n"
            "except UnsupportedFormatError as e:\n    print(e)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    msg = proc.stdout.strip()
    assert "MR_small_jpeg_ls_lossless.dcm" in msg and "JPEG-LS Lossless" in msg
    assert "install pylibjpeg with pylibjpeg-libjpeg" in msg


def test_folder_without_dicom(data_dir, tmp_path):
    shutil.copy(data_dir / LUNG_DX / "slices.csv", tmp_path / "slices.csv")
    (tmp_path / "notes").write_text("not dicom\n")
    with pytest.raises(ReadError, match="no DICOM files found"):
        engine.io.read(tmp_path)


# ---- registry and CLI --------------------------------------------------------------------


def test_registry_routes_folder(lidc, data_dir):
    img = engine.io.read(data_dir / LIDC, series_uid=None, mpp=0.5)
    assert img.shape == lidc.shape and img.series_uid == lidc.series_uid
    np.testing.assert_array_equal(img.array, lidc.array)


def test_cli_info_json(data_dir):
    proc = subprocess.run([sys.executable, "-m", "engine", "info", "--json", str(data_dir / LUNG_DX / "CT")],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    d = json.loads(proc.stdout)
    assert d["modality"] == "ct" and d["shape"] == [30, 512, 512]
    assert d["spacing"] == pytest.approx([8.0, 0.646484375, 0.646484375]) and d["units"] == "HU"


def test_cli_error_on_damaged_file(data_dir, tmp_path):
    bad = _corrupt("truncated", data_dir / LIDC / "000026.dcm", tmp_path / "cut.dcm")
    proc = subprocess.run([sys.executable, "-m", "engine", "info", "--json", str(bad)],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "cut.dcm" in lines[0]


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
