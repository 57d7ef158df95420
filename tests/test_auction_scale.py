"""The auction at scale, small: ch6_cigre_lv_10k's layout (a PT population split across federates,
CCs as parallel processes, obfuscators precomputed in the background) gives the same market as one
PT federate. Real HELICS, real phe, 512-bit keys (the explicit test flag)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_no_process_left, lemcosim

from lemcosim.analysis import load_run

pytestmark = pytest.mark.federation

SMALL = ["--set", "auction.key_bits=512", "--set", "auction.allow_short_keys=true",
         "--set", "auction.max_cluster=100", "--set", "auction.levels=10",  # fit 512 bits
         "--set", "prosumers.groups.0.count=8", "--set", "prosumers.groups.1.count=6",
         "--set", "prosumers.groups.2.count=6",  # 20 prosumers
         "--set", "auction.clusters={c_up: [r1, r2, r3, r4, r11, r12, r13, r14, r15], "
                  "c_down: [r5, r6, r7, r16, r8, r9, r10, r17, r18]}",
         "--set", "auction.dso.lines.0.limit_kw=5",  # 15 kW per 60 households, scaled to 20
         "--set", "time.windows=4", "--set", "auction.cycle_windows=2",
         "--set", "auction.keys_per_cycle=1"]  # two billing cycles


def run(run_dir: Path, terminals: int, workers: int):
    proc = lemcosim("run", "ch6_cigre_lv_10k", "--out", str(run_dir), "--no-progress", *SMALL,
                    "--set", f"auction.terminals={terminals}",
                    "--set", f"auction.obfuscator_workers={workers}", timeout=240)
    assert proc.returncode == 0, proc.stderr
    assert_no_process_left(run_dir)
    return load_run(run_dir)


def ahead(run_dir: Path, pt: str) -> list[int]:
    """Per window, how many of its obfuscators a PT had requested during the previous window."""
    lines = (run_dir / "logs" / f"{pt}.timing.jsonl").read_text().splitlines()
    return [json.loads(line)["obfuscators_ahead"] for line in lines]


def market(df):
    """What MO and DSO decided, per window and entity (federate names aside)."""
    rows = df[df.federate.isin(["mo", "dso"])]
    return rows.pivot_table(index=["window", "entity", "quantity"], values="value").value


def bills(df):
    pt = df[df.federate.str.startswith("pt")]
    return pt[pt.quantity.isin(["bill", "own_record"])].pivot_table(
        index=["window", "entity"], columns="quantity", values="value")  # per billing cycle


def test_split_population_clears_and_bills_like_one_terminal(tmp_path):
    split = run(tmp_path / "split", terminals=2, workers=1)
    whole = run(tmp_path / "whole", terminals=1, workers=0)  # no background: all inline

    assert set(split.federate) >= {"pt_0", "pt_1", "cc_c_up", "cc_c_down"}
    assert "pt" not in set(split.federate)
    # member i of the positions goes to pt_{i mod 2}: 10 prosumers each, none twice
    served = {f: set(split[(split.federate == f) & (split.quantity == "bill")].entity)
              for f in ("pt_0", "pt_1")}
    assert len(served["pt_0"]) == len(served["pt_1"]) == 10
    assert not served["pt_0"] & served["pt_1"]

    # the pipeline: each window's obfuscators were requested during the previous window (5 per
    # member: 2 bid curves, b, s and the mask) — the second cycle's first window too, under the
    # keys the KG sent a window early; only the run's first window computes them when it starts
    assert ahead(tmp_path / "split", "pt_0") == ahead(tmp_path / "split", "pt_1") == [0, 50, 50, 50]
    assert ahead(tmp_path / "whole", "pt") == [0, 0, 0, 0]  # no workers: all on the critical path

    a, b = market(split), market(whole)
    assert len(a) > 0 and a.index.equals(b.index)
    assert np.allclose(a, b, rtol=0, atol=1e-12)  # MCP, BCF, SCF, aggregates, flows: identical
    assert (a.xs("mcp", level="quantity") > 0).all()

    bs, bw = bills(split), bills(whole)
    assert len(bs) == len(bw) == 2 * 20  # two cycles
    assert np.allclose(bs.loc[bw.index], bw, rtol=0, atol=1e-12)
    assert np.allclose(bs["bill"], bs["own_record"], atol=1e-9)  # decrypted = plaintext record
    assert (bs["bill"].abs() > 0).sum() >= 10
