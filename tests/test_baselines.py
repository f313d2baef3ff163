"""The card's Baselines section comes from dataset_card/baselines/<version>.json, and README's
baseline figures are that same table: both from `python benchmarks/baselines.py`."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import pytest

from mnist_idk import card, curation
from mnist_idk.errors import MnistIdkError

from conftest import REPO, workspace

V1 = REPO / "dataset_card" / "baselines" / "v1.0.0.json"


def render_card(ws, splits, cur, out) -> str:
    """What build writes as README.md (byte sizes aside), without building again."""
    return str(card.render(ws, splits, cur, {name: 1 for name in splits}, out))


def card_sources(tmp_path):
    """A workspace whose card sources are a copy of this checkout's template and an empty baselines/."""
    shutil.copyfile(REPO / "dataset_card" / "template.md", tmp_path / "template.md")
    (tmp_path / "baselines").mkdir()
    return replace(workspace(), card_dir=tmp_path)


def test_a_card_with_baselines_json_has_the_table_and_without_has_no_section(working_build, real_splits,
                                                                             tmp_path, monkeypatch):
    built = (working_build / "README.md").read_text("utf-8")
    assert "## Baselines" not in built and "${" not in built  # no JSON for 'working': no section, no placeholder
    report = json.loads(V1.read_text("utf-8"))
    report["version"] = curation.WORKING
    ws = card_sources(tmp_path)
    (ws.baselines_dir / "working.json").write_text(json.dumps(report), "utf-8")
    text = render_card(ws, real_splits, curation.load(ws, curation.WORKING), working_build)
    section = text.split("## Baselines\n")[1].split("\n## ")[0]
    assert card.baselines_table(report) in section
    assert "`python benchmarks/baselines.py --version v1.0.0`" in section
    assert "mnist-idk evaluate predictions.csv --version working" in section
    assert text.index("## Counts") < text.index("## Baselines") < text.index("## Changelog")
    (ws.baselines_dir / "working.json").unlink()
    assert "## Baselines" not in render_card(ws, real_splits, curation.load(ws, curation.WORKING), working_build)


def test_the_committed_v1_report_renders_one_row_per_model_and_variant():
    report = json.loads(V1.read_text("utf-8"))
    section = card.baselines_section(workspace(), "v1.0.0")
    assert section.startswith("## Baselines\n")
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| model")]
    assert len(rows) == len(report["models"]) >= 6
    for row, model in zip(rows, report["models"]):
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert cells[:2] == [model["model"], model["labels"]]
        assert cells[2] == f"{100 * model['scores']['digit_accuracy']:.1f}%"
        assert cells[7] == f"{model['scores']['risk_coverage']['aurc']:.5f}"
    assert {"logistic regression", "10-NN", "RFF ridge (suggest's model)"} <= {m["model"] for m in report["models"]}
    assert card.baselines_section(workspace(), "v0.0.1") == ""


@pytest.mark.parametrize(("edit", "expected"), [
    (lambda r: r.pop("models"), "not a baselines report"),
    (lambda r: r.update(version="v2.0.0"), "reports version 'v2.0.0', expected 'v1.0.0'"),
])
def test_a_broken_report_is_named(tmp_path, monkeypatch, edit, expected):
    report = json.loads(V1.read_text("utf-8"))
    edit(report)
    ws = card_sources(tmp_path)
    path = ws.baselines_dir / "v1.0.0.json"
    path.write_text(json.dumps(report), "utf-8")
    with pytest.raises(MnistIdkError, match=expected) as info:
        card.baselines_section(ws, "v1.0.0")
    assert str(path) in str(info.value)
    path.write_text("{", "utf-8")
    with pytest.raises(MnistIdkError, match="not a baselines report"):
        card.baselines_section(ws, "v1.0.0")


def test_readme_shows_the_benchmark_table_of_the_latest_report():
    reports = sorted((REPO / "dataset_card" / "baselines").glob("v*.json"), key=lambda p: curation.parse_version(p.stem))
    latest = json.loads(reports[-1].read_text("utf-8"))
    readme = (REPO / "README.md").read_text("utf-8")
    assert card.baselines_table(latest) in readme, "re-run benchmarks/baselines.py and paste its table into README"
    assert f"python benchmarks/baselines.py --version {latest['version']}" in readme


def test_template_has_one_baselines_placeholder():
    assert workspace().template.read_text("utf-8").count("${baselines}") == 1


def test_the_benchmark_without_scikit_learn_says_what_to_install_and_writes_nothing(tmp_path):
    """scikit-learn is the benchmark's own dependency, not mnist-idk's: one line, exit 2, no JSON, no traceback."""
    import subprocess
    import sys

    out = tmp_path / "report.json"
    code = ("import sys; sys.modules['sklearn'] = None; sys.path.insert(0, 'benchmarks'); import baselines; "
            f"sys.exit(baselines.main(['--out', {str(out)!r}]))")
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2, run.stderr
    assert run.stderr.strip() == ("error: this benchmark needs scikit-learn, which mnist-idk does not install: "
                                  "pip install scikit-learn")
    assert not out.exists()
