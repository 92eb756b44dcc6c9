"""The paper audit: reading the authors' CSVs, the transcribed tables, the acceptance, the command."""

from __future__ import annotations

import csv

import pandas as pd
import pytest

from medseg.aggregate.tis import COLUMNS
from medseg.audit import DEFAULT_ACCURACY, DEFAULT_DOWNSTREAM, DEFAULT_PRINTED, DEFAULT_ROBUSTNESS
from medseg.audit.authors import align_authors, read_downstream, read_robustness
from medseg.audit.printed import ROWS, TABLES, read_printed
from medseg.audit.run import run_audit
from medseg.cli import main
from medseg.errors import MedsegError

ROBUSTNESS_HEADER = "dataset,metric,margin,encoder,pretraining_scheme,pooled,level,pretraining_length,robustness\n"
DOWNSTREAM_HEADER = (
    "model,dataset,pretraining length,ImageNet accuracy,freeze encoder,pretraining scheme,seed,"
    "dice index,mean dice index\n"
)


@pytest.fixture(scope="module")
def audit():
    return run_audit(DEFAULT_DOWNSTREAM, DEFAULT_ROBUSTNESS, DEFAULT_ACCURACY, DEFAULT_PRINTED, bootstrap=20)


def test_the_stored_hinge_becomes_eq3_and_levels_count_from_the_first(tmp_path):
    path = tmp_path / "robustness.csv"
    path.write_text(
        ROBUSTNESS_HEADER
        + "\n".join(
            [
                "COVID-QU,cosine_distance,0.5,swin_transformer,advanced_training,True,4,20,0.125",
                "COVID-QU,cosine_distance,0.5,swin_transformer,advanced_training,True,3,20,0.25",
                "ACDC,inv_pearson_corr,0.25,u-net_encoder,simple_training,False,5,300,0.0",
                "ACDC,l2_loss,0.25,resnet50,simple_training,False,4,1,1.5",
                "ACDC,l2_loss,0.25,resnet50,simple_training,False,2,1,0.5",  # neither last nor second-to-last
            ]
        )
        + "\n"
    )
    table = read_robustness(path)
    assert table["robustness"].tolist() == [0.875, 0.75, 1.0, -0.5]
    assert table["hinge_mean"].tolist() == [0.125, 0.25, 0.0, 1.5]
    assert table["level"].tolist() == ["last", "second_to_last", "last", "second_to_last"]
    assert table["distance"].tolist() == ["cosine", "cosine", "correlation", "l2"]
    assert table["model"].tolist() == ["swin_unet", "swin_unet", "unet", "resnet50_attention_unet"]
    assert table[["dataset", "scheme", "epoch"]].iloc[0].tolist() == ["covidqu", "advanced", 20]


def test_downstream_names_and_dice_column_per_dataset(tmp_path):
    path = tmp_path / "downstream.csv"
    path.write_text(
        DOWNSTREAM_HEADER
        + "\n".join(
            [
                "basic U-Net,ACDC,0,0.001,False,simple,123124,,0.8",
                "Swin U-Net,COVIDQUDataset,5,0.1,True,advanced,123125,0.7,",
            ]
        )
        + "\n"
    )
    runs = read_downstream(path)
    assert runs.to_dict("records") == [
        {
            "dataset": "acdc",
            "model": "unet",
            "scheme": "scratch",
            "epoch": 0,
            "mode": "full",
            "seed": 123124,
            "dice": 0.8,
        },
        {
            "dataset": "covidqu",
            "model": "swin_unet",
            "scheme": "advanced",
            "epoch": 5,
            "mode": "decoder",
            "seed": 123125,
            "dice": 0.7,
        },
    ]


def test_unknown_names_and_missing_columns_are_one_line_errors(tmp_path):
    path = tmp_path / "downstream.csv"
    path.write_text(DOWNSTREAM_HEADER + "U-Net++,ACDC,0,0.001,False,simple,1,,0.8\n")
    with pytest.raises(MedsegError, match="unknown model value.*'U-Net\\+\\+'"):
        read_downstream(path)
    path.write_text("model,dataset\nx,y\n")
    with pytest.raises(MedsegError, match="lacks the column"):
        read_downstream(path)
    path.write_text(DOWNSTREAM_HEADER + "basic U-Net,ACDC,five,0.001,False,simple,1,,0.8\n")
    with pytest.raises(MedsegError, match="does not convert"):
        read_downstream(path)
    path.write_text(DOWNSTREAM_HEADER + "basic U-Net,ACDC,5,0.001,False,simple,1,0.8,\n")
    with pytest.raises(MedsegError, match="line 2 has no Dice.*'mean dice index'"):
        read_downstream(path)


def test_authors_alignment_shifts_the_advanced_scheme_only():
    epochs = [0, 1, 5, 300]
    runs = pd.DataFrame(
        {
            "dataset": "d",
            "model": "m",
            "mode": "full",
            "seed": 1,
            "scheme": ["scratch", "simple", "simple", "advanced", "advanced", "advanced"],
            "epoch": [0, 1, 5, 1, 5, 300],
            "dice": [0.0, 0.1, 0.5, 1.1, 1.5, 1.3],
        }
    )
    aligned = align_authors(runs, epochs)
    advanced = aligned[aligned["scheme"] == "advanced"].set_index("epoch")["dice"].to_dict()
    assert advanced == {0: 1.1, 1: 1.5, 5: 1.3, 300: 0.0}
    simple = aligned[aligned["scheme"].isin(["simple", "scratch"])].set_index("epoch")["dice"].to_dict()
    assert simple == {0: 0.0, 1: 0.1, 5: 0.5}


def test_the_transcription_covers_every_printed_table():
    printed = read_printed(DEFAULT_PRINTED)
    assert len(printed) == 558
    sizes = printed.groupby("table").size().to_dict()
    assert sizes == {
        "3(a)": 24,
        "3(b)": 24,
        "4": 30,
        "5": 24,
        "6": 24,
        **{f"B.{i}({p})": 72 for i in (1, 2, 3) for p in "ab"},
    }
    assert set(printed["table"]) == set(TABLES) and set(printed["row"]) <= set(ROWS)
    assert printed["value"].str.fullmatch(r"[01]\.\d{3}").all()
    assert not printed.duplicated(["table", "row", "column"]).any()
    with open(DEFAULT_PRINTED, newline="") as handle:  # spot checks against the paper
        cells = {(r["table"], r["row"], r["column"]): r["value"] for r in csv.DictReader(handle)}
    assert cells[("B.1(a)", "ImageNet accuracy", "basic U-Net, full training")] == "0.999"
    assert cells[("B.3(b)", "cosine distance, margin 0.50", "R50 Attn. U-Net, full training")] == "1.000"
    assert cells[("4", "cosine distance, margin 0.50", "R50 Attn. U-Net, full training")] == "0.941"
    assert cells[("3(a)", "no pretraining", "IDRiD, decoder only")] == "0.866"


def test_acceptance_acdc_tables(audit):
    c = audit.comparison
    b1a, b1b = c[c["table"] == "B.1(a)"], c[c["table"] == "B.1(b)"]
    assert len(b1a) == 72 and len(b1b) == 72
    assert b1a["match_paper_text"].all()
    assert b1a["match_authors"].all()
    assert b1b["match_authors"].all()
    assert not b1b["match_paper_text"].all()


def test_the_audit_flags_the_published_defects(audit):
    tis = audit.tis
    assert set(tis["alignment"]) == {"paper_text", "authors"}
    assert audit.copied == ["acdc", "idrid"]
    paper = tis[tis["alignment"] == "paper_text"]
    cells = paper.drop_duplicates(["dataset", "model", "scheme", "mode"])
    assert len(cells) == 36
    incomplete = paper[~paper["complete"].astype(bool)]
    assert incomplete["notes"].str.contains("seed 123125 missing|repeated").all()
    assert (audit.runs.duplicated().sum(), len(audit.seeds)) == (2, 5)


def test_paper_audit_command(tmp_path, capsys):
    out = tmp_path / "audit"
    assert main(["paper-audit", "--out", str(out), "--bootstrap", "20"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["audit.md", "comparison.csv", "rank.parquet", "tis.parquet"]
    tis = pd.read_parquet(out / "tis.parquet")
    assert list(tis.columns) == ["alignment", *COLUMNS]
    report = (out / "audit.md").read_text()
    assert "## Matching cells per table" in report and "| Table B.1(a): ACDC, simple scheme | 72 | 72 | 72 |" in report
    assert "B.1(a)" in capsys.readouterr().out


def test_paper_audit_missing_csv_is_a_one_line_error(tmp_path, capsys):
    missing = tmp_path / "nowhere.csv"
    assert main(["paper-audit", "--downstream-csv", str(missing), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(missing) in err and err.startswith("medseg: error:")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("out", ["a_file", "/proc/audit"])  # /proc refuses new files, as a read-only mount would
def test_paper_audit_checks_out_before_reading_anything(tmp_path, capsys, out):
    (tmp_path / "a_file").write_text("mine")
    out = tmp_path / out  # an absolute `out` stays as it is
    missing = tmp_path / "nowhere.csv"  # would be the error if the results were read first
    assert main(["paper-audit", "--downstream-csv", str(missing), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(out) in err and str(missing) not in err
    assert (tmp_path / "a_file").read_text() == "mine"
