"""``python -m engine detect-nuclei`` / ``evaluate-nuclei``: exact output formats and errors."""
from __future__ import annotations

import csv
import json

import numpy as np
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
    assert lines[0] == "x,y,score,area_px,area_um2"
    rows = list(csv.DictReader(text.splitlines()))
    assert len(rows) > 50
    for r in rows:
        x, y, s = float(r["x"]), float(r["y"]), float(r["score"])
        assert 0 <= x < 500 and 0 <= y < 500 and 0 <= s <= 1
        # at 0.5 um/px one pixel is 0.25 um^2; nuclei are a few to ~250 um^2
        assert float(r["area_um2"]) == pytest.approx(0.25 * float(r["area_px"]), abs=0.01)
        assert 0 < float(r["area_um2"]) < 260
    # a plausible median nucleus area (the outlines are checked against MoNuSeg polygons in test_nuclei)
    assert 4 < float(np.median([float(r["area_um2"]) for r in rows])) < 80


def test_geojson_is_qupath_polygon_detections(detected):
    from matplotlib.path import Path as MPath

    gj = json.loads((detected / "img4.nuclei.geojson").read_text(encoding="utf-8"))
    rows = list(csv.DictReader((detected / "img4.nuclei.csv").read_text().splitlines()))
    assert gj["type"] == "FeatureCollection" and len(gj["features"]) == len(rows)
    inside = 0
    for f, r in zip(gj["features"], rows):
        assert f["type"] == "Feature" and f["geometry"]["type"] == "Polygon"
        ring = f["geometry"]["coordinates"][0]
        assert len(ring) >= 4 and ring[0] == ring[-1]  # closed, as GeoJSON requires
        inside += MPath(ring).contains_point((float(r["x"]), float(r["y"])))
        # the shoelace area of the outline is close to the area column (pixel count)
        xs, ys = [p[0] for p in ring], [p[1] for p in ring]
        shoelace = abs(sum(xs[i] * ys[i + 1] - xs[i + 1] * ys[i] for i in range(len(ring) - 1))) / 2
        assert shoelace == pytest.approx(float(r["area_px"]), rel=0.5, abs=6)
        assert f["properties"]["measurements"]["Area µm^2"] == pytest.approx(float(r["area_um2"]), abs=0.01)
    assert inside >= 0.95 * len(rows)  # the detected centre lies in its own outline
    f = gj["features"][0]
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
    assert s["parameters"]["roi"] == [100, 50, 200, 300]
    # a PNG has no pixel size: it is estimated from the nuclei (CRCHisto is 20x), never assumed silently
    assert s["mpp_source"] == "estimated" and s["mpp"] == 0.5
    assert s["mpp_estimate"]["magnification"] == "20x" and 0 < s["mpp_estimate"]["confidence"] <= 1
    assert "ESTIMATED" in s["note"] and s["density_per_mm2"] > 0
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


def test_estimated_scale_is_said_loudly(data_dir, tmp_path, capsys):
    img = data_dir / "histo/crchisto/img7/img7.png"
    assert main(["detect-nuclei", str(img), "--roi", "0,0,200,200", "--out", str(tmp_path)]) == 0
    cap = capsys.readouterr()
    assert "ESTIMATED" in cap.err and "--mpp" in cap.err
    assert "estimated" in cap.out


def test_evaluate_selects_the_image_rows(tmp_path, capsys):
    """A truth table of several images: rows of --image (or of the --pred file's name), never all of them."""
    (tmp_path / "a.nuclei.csv").write_text("x,y,score\n10,10,0.9\n50,56,0.8\n")
    (tmp_path / "truth.csv").write_text("image,region_id,x_mean_vertex,y_mean_vertex\n"
                                        "a,1,12,10\na,2,50,50\nb,1,10,10\nb,2,50,56\nb,3,90,90\n")
    args = ["evaluate-nuclei", "--pred", str(tmp_path / "a.nuclei.csv"), "--truth", str(tmp_path / "truth.csv"),
            "--radius", "3", "--json"]
    assert main(args) == 0  # matched to the pred file's name: image a
    r = json.loads(capsys.readouterr().out)
    assert (r["image"], r["tp"], r["fp"], r["fn"], r["n_truth"]) == ("a", 1, 1, 1, 2)
    assert main(args + ["--image", "b.png"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert (r["image"], r["tp"], r["fp"], r["fn"], r["n_truth"]) == ("b", 2, 0, 1, 3)
    (tmp_path / "pred.csv").write_text("x,y,score\n10,10,0.9\n")
    rc = main(["evaluate-nuclei", "--pred", str(tmp_path / "pred.csv"), "--truth", str(tmp_path / "truth.csv"),
               "--radius", "3"])
    assert rc != 0
    assert "--image" in capsys.readouterr().err
    assert main(["evaluate-nuclei", "--pred", str(tmp_path / "pred.csv"), "--truth", str(tmp_path / "truth.csv"),
                 "--radius", "3", "--image", "c"]) != 0
    assert "no rows for image 'c'" in capsys.readouterr().err
