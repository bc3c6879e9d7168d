"""NIfTI exports of CT volumes: the affine puts every voxel where DICOM says it is (in RAS)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from engine.io import read

CASES = ["ct/dcmqi_liver_ct3", "ct/single/eCT_Supplemental.dcm", "ct/single/CT_small.dcm"]


@pytest.mark.parametrize("case", CASES)
def test_voxels_map_to_dicom_positions(case, data_dir, tmp_path):
    import nibabel as nib

    from engine.export.nifti import write_nifti

    ct = read(str(data_dir / case))
    prov = {"software_version": "0.1.0", "model": {"name": "ct-dae", "sha256": "ab" * 32}}
    p = write_nifti(ct, ct.array, tmp_path / "v.nii.gz", provenance=prov, description="recon")
    img = nib.load(p)
    assert img.shape == (ct.shape[2], ct.shape[1], ct.shape[0])
    lps = np.asarray(ct.metadata["plane_positions"], float)
    ras = lps * [-1, -1, 1]
    # voxel (0, 0, 0) is the first slice's ImagePositionPatient, in RAS
    np.testing.assert_allclose(img.affine @ [0, 0, 0, 1], [*ras[0], 1], atol=0.01)
    for k, r in enumerate(ras):  # and every plane's origin its own
        np.testing.assert_allclose((img.affine @ [0, 0, k, 1])[:3], r, atol=0.01)
    # one step along i (a column) moves PixelSpacing[1] along the row cosine
    step = (img.affine @ [1, 0, 0, 1])[:3] - ras[0]
    np.testing.assert_allclose(step, np.asarray(ct.direction[:3]) * [-1, -1, 1] * ct.spacing[2], atol=1e-4)
    np.testing.assert_array_equal(np.asarray(img.dataobj).transpose(2, 1, 0), ct.array)
    assert int(img.header["sform_code"]) == 1 and int(img.header["qform_code"]) == 1
    np.testing.assert_allclose(img.get_qform(), img.affine, atol=1e-4)
    ext = json.loads(img.header.extensions[0].get_content())
    assert ext["model"]["sha256"] == "ab" * 32
    assert b"ct-dae" in img.header["descrip"].tobytes()


def test_axial_head_first_is_lpi(data_dir, tmp_path):
    import nibabel as nib

    from engine.export.nifti import write_nifti

    ct = read(str(data_dir / "ct/dcmqi_liver_ct3"))
    img = nib.load(write_nifti(ct, ct.array, tmp_path / "v.nii"))
    assert nib.aff2axcodes(img.affine) == ("L", "P", "I")
