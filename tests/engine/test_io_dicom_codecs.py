"""DICOM reader, compressed input: CT copies re-encoded here, pydicom's sample syntaxes,
lossless JPEG process 14, and DICOMDIR sets."""
from __future__ import annotations

import numpy as np
import pydicom
import pytest

import engine.io
from engine.io.dicom import list_series, read_dicom

from dicom_helpers import LIDC, LUNG_DX, check_against_pydicom, hu_of


@pytest.mark.parametrize("syntax", ["RLELossless", "JPEG2000Lossless", "JPEGLSLossless"])
def test_compressed_copies_read_back_identical(data_dir, tmp_path, syntax):
    from pydicom import uid

    ts = getattr(uid, syntax)
    src = data_dir / LUNG_DX / "CT" / "1-12.dcm"  # unsigned 12-bit: every encoder here takes it
    ds = pydicom.dcmread(src)
    ref = hu_of(ds)
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
        ref = hu_of(ds)
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
    ref = hu_of(ds)
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
