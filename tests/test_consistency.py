"""The consistency pass (protocol step 9): draw a stratum of the record blind, record both looks."""

from __future__ import annotations


import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from conftest import read_csv as read, small_record, workspace, write_csv as write

from mnist_idk import consistency, review
from mnist_idk.cli import main
from mnist_idk.errors import MnistIdkError

RANKING = ("rank,split,index,original,predicted,p_predicted,alternative,p_alternative,self_confidence,margin,"
           "entropy,knn_disagreement,centroid_distance,score\n")


def doubt(index: int) -> float:
    return (index % 10) / 10  # train 12, 13, 14, 22, 23, 24 fall in 0.2-0.5


@pytest.fixture
def root(tmp_path, labels):
    """A working record of train 10-29 kept and train 1 listed, and a ranking of train 0-39."""
    root = small_record(tmp_path / "lists", labels, range(10, 30))
    ranking = tmp_path / "ranking.csv"
    rows = sorted(range(40), key=lambda i: -doubt(i))
    ranking.write_text(RANKING + "".join(
        f"{rank},train,{i},{labels['train'][i]},{labels['train'][i]},0.9,{(labels['train'][i] + 1) % 10},0.05,"
        f"{doubt(i):.4f},0.8,0.1,0.0,1.0,{doubt(i):.4f}\n" for rank, i in enumerate(rows, 1)), "utf-8")
    return root


def draw(root, *options):
    return CliRunner().invoke(main, ["review", "consistency", "draw", "--lists-dir", str(root), "--round", "1.1.0",
                                     "--ranking", str(root.parent / "ranking.csv"), *options])


def test_draw_samples_one_stratum_in_a_seeded_order_without_the_recorded_decision(root, tmp_path):
    out = tmp_path / "pass"
    result = draw(root, "--part", "keeps-b", "--decision", "kept", "--doubt-min", "0.2", "--doubt-max", "0.5",
                  "--sample", "4", "--seed", "5", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "6 recorded decisions in the stratum (0 more covered by earlier passes); drawn 4 with seed 5" in result.stderr
    order = read(out / "order.csv")
    assert len(order) == 4 and len({r["index"] for r in order}) == 4
    assert all(int(r["index"]) in (12, 13, 14, 22, 23, 24) and r["recorded"] == "kept" for r in order)
    assert {r["stratum"] for r in order} == {"kept (both splits, doubt 0.2-0.5)"}
    fresh = out / "consistency-v1.1.0-keeps-b.csv"
    assert result.stdout.split()[-1] == str(fresh)
    text = fresh.read_text("utf-8")
    assert "kept" not in text and "plain digit" not in text  # no trace of the first decision
    assert [r["index"] for r in read(fresh)] == [r["index"] for r in order]  # the order shown
    assert (out / "consistency-v1.1.0-keeps-b-01.png").is_file()
    again = consistency.draw(workspace(root), root.parent / "ranking.csv", "v1.1.0", "keeps-b", "kept",
                             doubt=(0.2, 0.5), sample=4, seed=5)
    assert [d.index for d in again.drawn] == [int(r["index"]) for r in order]  # the same seed, the same draw
    other = consistency.draw(workspace(root), root.parent / "ranking.csv", "v1.1.0", "keeps-b", "kept",
                             doubt=(0.2, 0.5), sample=6, seed=6)
    assert sorted(d.index for d in other.drawn) == [12, 13, 14, 22, 23, 24]


def test_a_pass_in_progress_is_never_overwritten(root, tmp_path):
    out = tmp_path / "pass"
    assert draw(root, "--part", "a", "--sample", "2", "--out", str(out)).exit_code == 0
    before = {p: p.read_bytes() for p in out.iterdir()}
    result = draw(root, "--part", "a", "--sample", "3", "--seed", "1", "--out", str(out))
    assert result.exit_code == 2 and "already exists" in result.stderr and "Traceback" not in result.output
    assert {p: p.read_bytes() for p in out.iterdir()} == before


def test_bad_input_says_what_is_wrong(root, tmp_path, labels):
    result = draw(root, "--part", "Bad Part")
    assert result.exit_code == 2 and "part 'Bad Part'" in result.stderr
    result = draw(root, "--part", "a", "--doubt-min", "0.5", "--doubt-max", "0.2")
    assert result.exit_code == 2 and "doubt band 0.5-0.2" in result.stderr
    result = draw(root, "--part", "a", "--split", "test")
    assert result.exit_code == 2 and "no recorded decision in any (test, doubt 0-1)" in result.stderr
    ranking = root.parent / "ranking.csv"
    ranking.write_text("".join(line for line in ranking.read_text().splitlines(True) if ",train,25," not in line))
    result = draw(root, "--part", "a")
    assert result.exit_code == 2 and "1 recorded image(s) are not ranked (train 25)" in result.stderr
    assert not (tmp_path / "build").exists()


def test_record_needs_a_second_look_for_every_change_and_writes_both_looks(root, tmp_path, labels):
    ws = workspace(root)
    out = tmp_path / "pass"
    assert draw(root, "--part", "keeps", "--decision", "kept", "--sample", "5", "--seed", "2", "--out",
                str(out)).exit_code == 0
    fresh = out / "consistency-v1.1.0-keeps.csv"
    rows = read(fresh)
    changed, unsure = rows[0]["index"], rows[1]["index"]
    for n, row in enumerate(rows):
        row.update(decision="listed" if n == 0 else "unsure" if n == 1 else "kept",
                   reason="deformed" if n == 0 else "", note=f"fresh look {n}")
    write(fresh, consistency.FRESH_COLUMNS, rows)
    record_dir = root / "reviewed"
    before = {p: p.read_bytes() for p in record_dir.iterdir()}
    with pytest.raises(MnistIdkError) as error:
        consistency.record(ws, out)
    message = str(error.value)
    assert f"{fresh}:2: train {changed}: the fresh look (listed) differs from the recorded kept" in message
    assert f"{fresh}:3: train {unsure}: the fresh look (unsure)" in message
    assert {p: p.read_bytes() for p in record_dir.iterdir()} == before  # nothing written
    write(out / "second.csv", consistency.SECOND_COLUMNS, [
        {"split": "train", "index": changed, "decision": "listed", "reason": "deformed", "note": "second: no digit"},
        {"split": "train", "index": unsure, "decision": "kept", "reason": "", "note": "second: a plain digit"}])
    decisions = tmp_path / "redecide.csv"
    write(decisions, review.DECISION_COLUMNS, [
        {"split": "train", "index": changed, "original": labels["train"][int(changed)], "predicted": "",
         "source": "seed-v1.0.0", "decision": "listed", "reason": "deformed", "note": "consistency pass: no digit"}])
    result = CliRunner().invoke(main, ["review", "apply", "--lists-dir", str(root), "--redecide", str(decisions)])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(main, ["review", "consistency", "record", "--lists-dir", str(root), str(out)])
    assert result.exit_code == 0, result.output
    assert "5 images, 2 second looks, 1 changed from the recorded decision" in result.stdout
    written = read(record_dir / "consistency-v1.1.0.csv")
    assert [r["index"] for r in written] == sorted((r["index"] for r in rows), key=int)
    by_index = {r["index"]: r for r in written}
    assert by_index[changed] == {"split": "train", "index": changed, "original": str(labels["train"][int(changed)]),
                                 "stratum": "kept (both splits, doubt 0-1)", "part": "keeps", "recorded": "kept",
                                 "fresh": "listed", "fresh_note": "fresh look 0", "second": "listed",
                                 "second_note": "second: no digit", "final": "listed"}
    assert by_index[unsure]["second"] == "kept" and by_index[unsure]["final"] == "kept"
    assert review.lint(ws, labels) == []
    # the next pass leaves out what this one covered
    nxt = consistency.draw(ws, root.parent / "ranking.csv", "v1.1.0", "rest", "kept")
    assert nxt.covered == 4 and nxt.size == 15  # 20 keeps, 1 now listed, 4 kept ones covered
    assert not {d.index for d in nxt.drawn} & {int(r["index"]) for r in rows}


def test_lint_reads_every_pass_file(root, labels):
    path = root / "reviewed" / "consistency-v1.1.0.csv"
    path.write_text("split,index,original,recorded,fresh,second,final\n"
                    f"train,10,{labels['train'][10]},kept,maybe,,kept\n"
                    f"train,10,{labels['train'][10]},kept,kept,,kept\n"
                    "train,70000,1,kept,kept,,kept\n", "utf-8")
    found = [str(p) for p in review.lint(workspace(root), labels)]
    assert f"{path}:2: fresh 'maybe' is not listed or kept or unsure" in found
    assert f"{path}:3: train 10 is decided twice (also line 2)" in found
    assert any(p.startswith(f"{path}:4: index '70000'") for p in found)
    path.write_text("split,index,decision\n", "utf-8")
    assert [str(p) for p in review.lint(workspace(root), labels)] == [
        f"{path}:1: header lacks original, recorded, fresh, second, final "
        "(needs split,index,original,recorded,fresh,second,final; has split,index,decision)"]


def test_only_draws_from_a_chosen_family_and_says_what_is_wrong_with_its_file(root, tmp_path):
    family = tmp_path / "family.csv"
    family.write_text("split,index,why\ntrain,11,a foot\ntrain,27,a foot\ntrain,5,never reviewed\n", "utf-8")
    out = tmp_path / "pass"
    result = draw(root, "--part", "feet", "--only", str(family), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "2 recorded decisions in the stratum" in result.stderr
    assert sorted(int(r["index"]) for r in read(out / "order.csv")) == [11, 27]
    assert {r["stratum"] for r in read(out / "order.csv")} == {"any (both splits, doubt 0-1, of a chosen family)"}
    family.write_text("split,index\ntrain,11\nvalid,3\n", "utf-8")
    result = draw(root, "--part", "feet2", "--only", str(family))
    assert result.exit_code == 2 and f"{family}:3: split 'valid' is not train or test" in result.stderr
    family.write_text('split,index,why\ntrain,11,"a foot\nthat runs on"\nvalid,3,x\n', "utf-8")
    result = draw(root, "--part", "feet2", "--only", str(family))  # a note over two lines: the next row is line 4
    assert result.exit_code == 2 and f"{family}:4: split 'valid' is not train or test" in result.stderr
    family.write_text("index\n11\n", "utf-8")
    result = draw(root, "--part", "feet3", "--only", str(family))
    assert result.exit_code == 2 and f"{family}:1: header lacks split (needs split,index; has index)" in result.stderr


def test_a_broken_pass_file_is_named_not_a_traceback(root, labels):
    path = root / "reviewed" / "consistency-v1.0.5.csv"
    path.write_bytes(b"split,index,original,recorded,fresh,second,final\ntrain,10,\xff,kept,kept,,kept\n")
    assert [str(p) for p in review.lint(workspace(root), labels)] == [f"{path}:0: not UTF-8 (byte offset 58)"]
    path.write_text("split,index,original,recorded,fresh,second,final\ntrain,ten,1,kept,kept,,kept\n"
                    "train,11,1,kept\n", "utf-8")
    result = draw(root, "--part", "a")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "2 problem(s) in an earlier pass" in result.stderr and f"{path}:3: expected 7 fields" in result.stderr



HEADER = b"split,index,original,recorded,fresh,second,final\n"
FIELD = st.sampled_from(["train", "test", "7", "70000", "kept", "listed", "unsure", "", "x", '"a,b"', '"a\nb"'])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(st.binary(max_size=300),
                      st.lists(st.lists(FIELD, max_size=9).map(",".join), max_size=6).map(
                          lambda rows: HEADER + "\n".join(rows).encode())))
def test_read_consistency_reports_any_damage_as_problems_and_never_raises(tmp_path, body):
    path = tmp_path / "consistency-v9.9.9.csv"
    path.write_bytes(body)
    assert all(p.path == path and p.message for p in review.read_consistency(path)[1])


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(st.sampled_from(["train", "test"]), st.integers(0, 9999),
                               st.sampled_from(review.DECISIONS), st.sampled_from([*review.DECISIONS, "unsure"]),
                               st.sampled_from([*review.DECISIONS, ""]), st.sampled_from(review.DECISIONS)),
                     min_size=1, max_size=8, unique_by=lambda r: r[:2]),
       bad=st.integers(0, 7))
def test_read_consistency_accepts_valid_rows_and_names_the_line_of_a_bad_one(tmp_path, labels, rows, bad):
    path = tmp_path / "consistency-v9.9.9.csv"
    lines = [f"{s},{i},{labels[s][i]},{r},{f},{sec},{fin}" for s, i, r, f, sec, fin in rows]
    path.write_text(HEADER.decode() + "\n".join(lines) + "\n", "utf-8")
    assert review.read_consistency(path, labels)[1] == []
    bad %= len(rows)
    lines[bad] = lines[bad].rsplit(",", 1)[0] + ",unsure"  # final must be listed or kept
    path.write_text(HEADER.decode() + "\n".join(lines) + "\n", "utf-8")
    assert [(p.line, p.message) for p in review.read_consistency(path, labels)[1]] == [
        (bad + 2, "final 'unsure' is not listed or kept")]


def test_a_damaged_ranking_or_family_file_is_one_line_naming_it(root, tmp_path):
    ranking = root.parent / "ranking.csv"
    lines = ranking.read_text().splitlines(True)
    fields = lines[3].split(",")
    fields[4] = "x"  # predicted: not a digit
    ranking.write_text("".join(lines[:3]) + ",".join(fields) + "".join(lines[4:]))
    result = draw(root, "--part", "a")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"{ranking}:4: index, predicted and alternative must be integers" in result.stderr
    family = tmp_path / "family.csv"
    family.write_bytes(b"split,index\ntrain,1\xff\n")
    ranking.write_text("".join(lines))
    result = draw(root, "--part", "a", "--only", str(family))
    assert result.exit_code == 2 and f"{family}:0: not UTF-8 (byte offset 19)" in result.stderr
