"""Fixtures shared by the CT viewing tests: the LIDC-IDRI-0001 series (read once per test module)
and a shown :class:`CtView` with it loaded. Import them into a test module to use them."""
from __future__ import annotations

import pytest

LIDC = ("ct", "lidc_idri", "LIDC-IDRI-0001")


@pytest.fixture(scope="module")
def lidc(data_dir):
    from engine.io.dicom import read_dicom

    return read_dicom(data_dir.joinpath(*LIDC))


@pytest.fixture
def view(qtbot, lidc):
    from desktop.session import Session
    from desktop.views.ct_view import CtView

    session = Session()
    v = CtView(session)
    qtbot.addWidget(v)
    v.resize(900, 700)
    v.show()
    qtbot.waitExposed(v)
    session.set_data(lidc, lidc.path)
    return v
