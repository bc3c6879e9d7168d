"""``python -m engine detect-nuclei`` / ``evaluate-nuclei``: exact output formats and errors."""
from __future__ import annotations

import csv
import json

import pytest

from engine.cli import main


@pytest.fixture(scope="module")
def detected(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("nuclei")
    img = data_dir / "histo/crchisto/img4/img4.png"
    rc = main(["detect-nuclei", str(img), "--mpp", "0.5", "--out", str(out)])
    assert rc == 0
    return out


def test_csv_format(detected):
    text = (detected / "img4.nuclei.csv").read_text(encoding="utf-8")
    lines = text.splitlines()
    assert lines[0] == "x,y,score"
    rows = list(csv.DictReader(text.splitlines()))
    assert len(rows) > 50
    for r in rows:
        x, y, s = float(r["x"]), float(r["y"]), float(r["score"])
        assert 0 <= x < 500 and 0 <= y < 500 and 0 <= s <= 1


def test_geojson_is_qupath_point_detections(detected):
    gj = json.loads((detected / "img4.nuclei.geojson").read_text(encoding="utf-8"))
    rows = list(csv.DictReader((detected / "img4.nuclei.csv").read_text().splitlines()))
    assert gj["type"] == "FeatureCollection" and len(gj["features"]) == len(rows)
    f = gj["features"][0]
    assert f["type"] == "Feature" and f["geometry"]["type"] == "Point"
    assert f["geometry"]["coordinates"] == [pytest.approx(float(rows[0]["x"]), abs=0.01),
                                            pytest.approx(float(rows[0]["y"]), abs=0.01)]
    props = f["properties"]
    assert props["objectType"] == "detection"
    assert props["classification"]["name"] == "Nucleus" and len(props["classification"]["color"]) == 3
    assert 0 <= props["measurements"]["score"] <= 1 and props["score"] == props["measurements"]["score"]


def test_summary(detected):
    s = json.loads((detected / "img4.summary.json").read_text(encoding="utf-8"))
    n = len((detected / "img4.nuclei.csv").read_text().splitlines()) - 1
    assert s["count"] == n and s["model"] == "histo-nuclei" and len(s["sha256"]) == 64
    assert s["mpp"] == 0.5 and s["mpp_source"] == "given (--mpp)"
    assert s["density_per_mm2"] == pytest.approx(n / (500 * 500 * 0.5e-3 ** 2))
    assert "total" in s["timings_s"] and s["parameters"]["threshold"] > 0


def test_json_and_roi(data_dir, tmp_path, capsys):
    img = data_dir / "histo/crchisto/img7/img7.png"
    rc = main(["detect-nuclei", str(img), "--roi", "100,50,200,300", "--out", str(tmp_path), "--json"])
    assert rc == 0
    s = json.loads(capsys.readouterr().out)
    assert s["parameters"]["roi"] == [100, 50, 200, 300] and s["density_per_mm2"] is None
    assert s["mpp_source"].startswith("assumed")
    rows = list(csv.DictReader((tmp_path / "img7.nuclei.csv").read_text().splitlines()))
    assert len(rows) == s["count"] > 10
    assert all(99.5 <= float(r["x"]) < 299.5 and 49.5 <= float(r["y"]) < 349.5 for r in rows)


def test_evaluate_known_answer(tmp_path, capsys):
    (tmp_path / "pred.csv").write_text("x,y,score\n10,10,0.9\n50,56,0.8\n200,200,0.7\n")
    (tmp_path / "truth.csv").write_text("image,label,x,y\na,n,12,10\na,n,50,50\na,n,90,90\n")
    rc = main(["evaluate-nuclei", "--pred", str(tmp_path / "pred.csv"), "--truth", str(tmp_path / "truth.csv"),
               "--radius", "6", "--json"])
    assert rc == 0
    r = json.loads(capsys.readouterr().out)
    assert (r["tp"], r["fp"], r["fn"]) == (2, 1, 1)
    assert r["precision"] == pytest.approx(2 / 3) and r["f1"] == pytest.approx(2 / 3)
    rc = main(["evaluate-nuclei", "--pred", str(tmp_path / "pred.csv"), "--truth", str(tmp_path / "truth.csv"),
               "--radius", "5"])
    out = capsys.readouterr().out
    assert rc == 0 and "precision 0.3333" in out and "recall    0.3333" in out


def test_errors(tmp_path, capsys):
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    rc = main(["evaluate-nuclei", "--pred", str(tmp_path / "bad.csv"), "--truth", str(tmp_path / "bad.csv"),
               "--radius", "6"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error:") and "bad.csv" in err
    rc = main(["detect-nuclei", str(tmp_path / "missing.png"), "--out", str(tmp_path / "o")])
    assert rc == 2 and "missing.png" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
