"""Window checkpoints: atomic, bounded in number, and a resume point every federate shares."""

from __future__ import annotations

import numpy as np
import pytest

from lemcosim.federates.common import checkpoint
from lemcosim.federates.common.errors import LemcosimError


def test_a_checkpoint_round_trips_state_including_an_rng(tmp_path):
    rng = np.random.default_rng(7)
    rng.random(3)
    checkpoint.write(tmp_path, "prosumers", 5, checkpoint.dumps({"soc": np.array([0.5, 0.25]), "rng": rng}))
    back = checkpoint.load(tmp_path, "prosumers", 5)
    assert back["soc"].tolist() == [0.5, 0.25]
    # the restored generator continues the same stream
    assert back["rng"].random() == rng.random()


def test_only_the_last_checkpoints_are_kept(tmp_path):
    for w in range(10):
        checkpoint.write(tmp_path, "amm", w, checkpoint.dumps(w))
    assert checkpoint.windows(tmp_path, "amm") == list(range(10 - checkpoint.KEEP, 10))
    assert not list(checkpoint.checkpoint_dir(tmp_path, "amm").glob("*.tmp"))


def test_resume_after_the_last_window_all_federates_completed(tmp_path):
    for w in range(6):
        checkpoint.write(tmp_path, "prosumers", w, checkpoint.dumps(w))
    for w in range(4):  # the grid was one window behind when the run was killed, the amm two
        checkpoint.write(tmp_path, "grid", w, checkpoint.dumps(w))
    for w in range(3):
        checkpoint.write(tmp_path, "amm", w, checkpoint.dumps(w))
    assert checkpoint.resume_window(tmp_path, ["prosumers", "grid", "amm"]) == 2


def test_missing_and_broken_checkpoints_are_named(tmp_path):
    with pytest.raises(LemcosimError, match="'grid' has no checkpoint"):
        checkpoint.resume_window(tmp_path, ["grid"])
    checkpoint.write(tmp_path, "grid", 0, checkpoint.dumps(1))
    (checkpoint.checkpoint_dir(tmp_path, "grid") / "w00000000.pkl").write_bytes(b"\x80\x05garbage")
    with pytest.raises(LemcosimError, match="unreadable"):
        checkpoint.load(tmp_path, "grid", 0)
    with pytest.raises(LemcosimError, match="no checkpoint of window 3"):
        checkpoint.load(tmp_path, "grid", 3)


def test_a_resumed_log_keeps_only_the_rows_before_the_boundary(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from lemcosim.federates.common.logschema import live_files, live_journals
    from lemcosim.federates.common.tidylog import TidyLog

    log = TidyLog(tmp_path, "amm", flush_every_windows=2)
    for w in range(7):  # windows 0-5 in three parts, window 6 journalled
        log.record(10.0 * w, w, "pool", "rho", float(w))
        log.end_window(w)
    log.record(70.0, 7, "pool", "rho", 7.0)  # killed during window 7: no close
    log.flush()
    assert live_journals(tmp_path / "amm")

    resumed = TidyLog(tmp_path, "amm", flush_every_windows=2)
    resumed.truncate_at(45.0)  # resume after window 4 (window 5 starts at 50 s)
    assert not live_journals(tmp_path / "amm") and len(live_files(tmp_path / "amm")) == 1
    for w in (5, 6):
        resumed.record(10.0 * w, w, "pool", "rho", 100.0 + w)
        resumed.end_window(w)
    resumed.close()
    rows = pa.concat_tables(pq.read_table(p) for p in live_files(tmp_path / "amm"))
    assert rows["window"].to_pylist() == [0, 1, 2, 3, 4, 5, 6]
    assert rows["value"].to_pylist() == [0.0, 1.0, 2.0, 3.0, 4.0, 105.0, 106.0]


def test_a_year_population_checkpoints_and_continues_the_same_stream():
    """pvlib and demandlib year generators and the random streams survive a pickle."""
    import pickle

    from lemcosim.federates.prosumers.config import PopulationConfig
    from lemcosim.federates.prosumers.population import Population
    from lemcosim.runner.validate import load_scenario

    scenario, _ = load_scenario("year_ieee13")
    config = PopulationConfig.model_validate(scenario.prosumers.model_dump(
        mode="json", exclude={"enabled", "external", "split"}))
    population = Population.from_config(config, 900.0, scenario.time.start)
    for w in range(3):
        population.step(w)
    copy = pickle.loads(pickle.dumps(population))
    for w in (3, 4, 700):  # 700: a week later, past the resampled block the copy holds
        assert np.array_equal(population.step(w).net_kw, copy.step(w).net_kw)
