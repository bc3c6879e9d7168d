"""CT anomaly maps as DICOM Parametric Map, Segmentation and Secondary Capture, on a real series."""
from __future__ import annotations

import numpy as np
import pydicom
import pytest
from export_helpers import SHA, dciodvfy_errors, hot_map, needs_dciodvfy

from engine.errors import ReadError
from engine.io import read


@pytest.fixture(scope="module")
def ct(data_dir):
    return read(str(data_dir / "ct/dcmqi_liver_ct3"))  # 3 slices, head first, + a liver SEG beside


@pytest.fixture(scope="module")
def written(ct, tmp_path_factory):
    from engine.export.dicom_pm import write_parametric_map
    from engine.export.dicom_sc import write_secondary_capture
    from engine.export.dicom_seg import write_segmentation

    out = tmp_path_factory.mktemp("dicom")
    amap = hot_map(ct.shape)
    return amap, {"pm": write_parametric_map(ct, amap, out / "a.pm.dcm"),
                  "seg": write_segmentation(ct, amap, out / "a.seg.dcm"),
                  "sc": write_secondary_capture(ct, amap, out / "a.sc.dcm")}


@needs_dciodvfy
@pytest.mark.parametrize("kind", ["pm", "seg", "sc"])
def test_dciodvfy_finds_no_error(written, kind):
    errors, out = dciodvfy_errors(written[1][kind])
    assert not errors, out


@pytest.mark.parametrize("kind", ["pm", "seg", "sc"])
def test_same_study_frame_of_reference_no_patient_identity(ct, written, kind):
    src = pydicom.dcmread(ct.series[[s.uid for s in ct.series].index(ct.series_uid)].files[0])
    ds = pydicom.dcmread(written[1][kind])
    assert ds.StudyInstanceUID == src.StudyInstanceUID
    if kind != "sc":
        assert ds.FrameOfReferenceUID == src.FrameOfReferenceUID
    assert str(src.PatientName) and str(ds.PatientName) == "" and ds.PatientID == ""
    assert ds.get("PatientBirthDate", "") == ""
    assert ds.SeriesInstanceUID != src.SeriesInstanceUID and ds.Manufacturer == "Latent"


def _frames_geometry(ds):
    pos = [tuple(float(v) for v in f.PlanePositionSequence[0].ImagePositionPatient)
           for f in ds.PerFrameFunctionalGroupsSequence]
    uids = [f.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
            for f in ds.PerFrameFunctionalGroupsSequence]
    return pos, uids


def test_parametric_map_values_and_geometry(ct, written):
    import highdicom as hd

    amap, paths = written
    pm = hd.pm.ParametricMap.from_dataset(pydicom.dcmread(paths["pm"]))
    pos, uids = _frames_geometry(pm)
    assert uids == list(ct.metadata["sop_instance_uids"])  # frame k <-> plane k's source instance
    np.testing.assert_allclose(pos, ct.metadata["plane_positions"], atol=1e-3)
    assert pm.pixel_array.dtype == np.float32  # float pixels: the calibrated values themselves
    np.testing.assert_array_equal(pm.pixel_array, amap.array)
    rwvm = pm.SharedFunctionalGroupsSequence[0].RealWorldValueMappingSequence[0]
    assert float(rwvm.RealWorldValueSlope) == 1.0 and float(rwvm.RealWorldValueIntercept) == 0.0
    assert rwvm.MeasurementUnitsCodeSequence[0].CodeValue == "1"
    assert float(rwvm.DoubleFloatRealWorldValueLastValueMapped) == pytest.approx(2.5)


def test_segmentation_mask_algorithm_and_geometry(ct, written):
    import highdicom as hd

    amap, paths = written
    seg = hd.seg.segread(paths["seg"])
    desc = seg.SegmentSequence[0]
    assert seg.number_of_segments == 1 and desc.SegmentAlgorithmType == "AUTOMATIC"
    assert desc.SegmentAlgorithmName == "ct-dae"
    assert desc.SegmentationAlgorithmIdentificationSequence[0].AlgorithmVersion == SHA[:16]
    vol = seg.get_volume()
    # highdicom's volume is (slice, row, col) in patient space: voxel (0, 0, 0) is plane 0's position
    np.testing.assert_allclose(vol.affine[:3, 3], ct.origin, atol=1e-3)
    pos, uids = _frames_geometry(seg)
    assert uids == list(ct.metadata["sop_instance_uids"])
    frames = seg.pixel_array  # all planes are frames, in plane order
    assert frames.shape == tuple(ct.shape)
    np.testing.assert_array_equal(frames.astype(bool), amap.array > 1)


def test_secondary_capture_is_the_hottest_plane(ct, written):
    ds = pydicom.dcmread(written[1]["sc"])
    assert ds.SamplesPerPixel == 3 and (ds.Rows, ds.Columns) == ct.shape[1:]
    assert ds.BurnedInAnnotation == "NO" and list(ds.PatientOrientation) == ["L", "P"]
    assert "plane 1" in ds.ImageComments
    rgb = ds.pixel_array
    hot = rgb[100:180, 200:260].astype(int)
    assert (np.abs(hot[..., 0] - hot[..., 2]) > 40).mean() > 0.9  # coloured where the map is 2.5
    cold = rgb[300:400, 100:200].astype(int)
    assert np.abs(cold[..., 0] - cold[..., 2]).max() < 40  # nearly grey where it is 0.25


def test_keep_identifiers_on_request(ct, tmp_path):
    from engine.export.dicom_seg import write_segmentation

    ds = pydicom.dcmread(write_segmentation(ct, hot_map(ct.shape), tmp_path / "s.dcm", keep_identifiers=True))
    assert str(ds.PatientName) == "JANCT000"


def test_wrong_shape_and_non_dicom_are_clear_errors(ct, data_dir, tmp_path):
    from engine.export.dicom_pm import write_parametric_map
    from engine.results import AnomalyMap

    bad = AnomalyMap(array=np.zeros((2, 4, 4), np.float32), scale={}, model="m", sha256=SHA)
    with pytest.raises(ReadError, match="shape"):
        write_parametric_map(ct, bad, tmp_path / "x.dcm")
    png = read(str(data_dir / "histo/crchisto/img4/img4.png"))
    with pytest.raises(ReadError, match="DICOM"):
        write_parametric_map(png, hot_map((3, 4, 4)), tmp_path / "y.dcm")
    assert not list(tmp_path.iterdir())  # nothing half-written
