"""The sweep summary from job folders as train.py leaves them, and DDP's evaluation shards."""

from __future__ import annotations

import csv
import json
import statistics
from pathlib import Path

import pytest
import torch

from mnistlab.data.sharding import Batches, EvenShards
from mnistlab.data.tensors import ImageTensors
from mnistlab.summary import main, read_jobs, summarise
from mnistlab.sweeps import job_name


def write_job(sweep: Path, number: int, overrides: list[str], result: dict | None) -> Path:
    """A job folder as Hydra and train.py write it (``result`` None: the job never ended)."""
    folder = sweep / job_name(number, overrides)
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    (folder / ".hydra" / "config.yaml").write_text("optimized_metric: val/acc_best\n")
    if result is not None:
        (folder / "result.json").write_text(json.dumps(result))
    return folder


def completed(val: float, test: float, seconds: float = 10.0) -> dict:
    return {"status": "completed", "metrics": {"val/acc_best": val, "test/acc": test},
            "epochs": 2, "epoch_seconds": [4.0, 5.0], "seconds": seconds}


@pytest.fixture
def sweep(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Two models x two seeds, the second model's seed 1 failed, one job killed mid-run."""
    monkeypatch.setenv("MNISTLAB_SWEEP_KEYS", "model,replicate")
    runs = [("cnn", 0, completed(0.990, 0.991, 30)), ("cnn", 1, completed(0.980, 0.985, 34)),
            ("mlp_bn", 0, completed(0.970, 0.975)),
            ("mlp_bn", 1, {"status": "failed", "error": "the loss became NaN at step 3",
                           "metrics": {}}),
            ("mlp_sigmoid", 0, None)]
    for number, (model, replicate, result) in enumerate(runs):
        write_job(tmp_path, number, [f"model={model}", f"replicate={replicate}",
                                     "trainer.max_epochs=2"], result)
    return tmp_path


def test_replicates_share_a_row_with_mean_and_std_and_configs_are_never_averaged(sweep) -> None:
    rows = summarise(read_jobs(sweep))
    assert [row["model"] for row in rows] == ["cnn", "mlp_bn", "mlp_sigmoid"]  # best first
    cnn, mlp, killed = rows
    assert "replicate" not in cnn and "trainer.max_epochs" not in cnn  # the same in every job
    assert cnn["job"] == "0,1" and cnn["n"] == "2" and cnn["status"] == "2 completed"
    assert cnn["best val acc"] == (f"{100 * statistics.mean([0.99, 0.98]):.2f} ± "
                                   f"{100 * statistics.stdev([0.99, 0.98]):.2f}%")
    assert cnn["test acc"] == "98.80 ± 0.42%" and cnn["total s"] == "32.00 ± 2.83"
    assert cnn["s/epoch"] == "4.5" and cnn["epochs"] == "2"
    assert cnn["run folder"] == "0_model=cnn,replicate=0, 1_model=cnn,replicate=1"
    # The failed seed is counted as failed and left out of the mean, not averaged in.
    assert mlp["status"] == "1 completed, 1 failed" and mlp["n"] == "1"
    assert mlp["best val acc"] == "97.00%"
    assert killed["status"] == "no result" and killed["best val acc"] == "-"


def test_one_failed_job_shows_its_error_in_the_table(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MNISTLAB_SWEEP_KEYS", "optimizer.lr")
    write_job(tmp_path, 0, ["optimizer.lr=0.1"], completed(0.9, 0.9))
    write_job(tmp_path, 1, ["optimizer.lr=-1"],
              {"status": "failed", "error": "optimizer.lr=-1 is invalid", "metrics": {}})
    rows = summarise(read_jobs(tmp_path))
    assert [(r["optimizer.lr"], r["status"]) for r in rows] == [
        ("0.1", "completed"), ("-1", "failed: optimizer.lr=-1 is invalid")]
    assert "n" not in rows[0]  # nothing was repeated


def test_a_loss_metric_sorts_lowest_first(sweep) -> None:
    for path, loss in zip(sorted(sweep.glob("[0-2]_*/result.json")), (0.3, 0.1, 0.2),
                          strict=True):
        result = json.loads(path.read_text())
        result["metrics"]["val/loss"] = loss
        path.write_text(json.dumps(result))
    rows = summarise(read_jobs(sweep), metric="val/loss")
    assert [row["model"] for row in rows] == ["cnn", "mlp_bn", "mlp_sigmoid"]  # cnn: mean 0.2


def test_summary_command_rebuilds_the_table_of_an_interrupted_sweep(sweep, tmp_path,
                                                                    capsys) -> None:
    main([str(sweep), "--out", str(tmp_path / "copy"), "--command", "make compare"])
    printed = capsys.readouterr().out
    text = (sweep / "summary.md").read_text()
    assert text in printed and "Command: `make compare`" in text
    assert (tmp_path / "copy" / "summary.md").read_text() == text
    with (sweep / "summary.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [row["model"] for row in rows] == ["cnn", "mlp_bn", "mlp_sigmoid"]
    assert rows[2]["status"] == "no result"


def test_summary_of_a_folder_without_jobs_says_what_to_pass(tmp_path) -> None:
    with pytest.raises(SystemExit) as ended:  # SystemExit with a message: exit 1, no traceback
        main([str(tmp_path)])
    assert str(ended.value).startswith(
        f"Error: no job folders (*/.hydra/overrides.yaml) under {tmp_path}")


def test_the_table_goes_into_each_page_with_the_chosen_columns(sweep, tmp_path) -> None:
    pages = [tmp_path / "results.md", tmp_path / "README.md"]
    pages[0].write_text("intro\n<!-- table:compare -->\nold\n<!-- /table:compare -->\nend\n")
    main([str(sweep), "--out", str(tmp_path / "compare"), "--command", "make compare",
          "--page", str(pages[0]), "--page", str(pages[1]), "--columns", "model,test acc"])
    first = pages[0].read_text()
    assert first.startswith("intro\n<!-- table:compare -->\n| model | test acc |\n")
    assert "old" not in first and first.endswith("<!-- /table:compare -->\nend\n")
    assert "| cnn | 98.80 ± 0.42% |" in first and "Written by `make compare` at commit" in first
    assert "<!-- table:compare -->\n| model | test acc |" in pages[1].read_text()


@pytest.mark.parametrize(("size", "processes", "batch_size"),
                         [(10000, 3, 1000), (4999, 2, 700), (10, 4, 2), (7, 2, 100)])
def test_even_shards_cover_every_image_once_in_as_many_batches_on_every_process(
        size, processes, batch_size) -> None:
    data = ImageTensors(torch.zeros(size, 1, 2, 2, dtype=torch.uint8), torch.arange(size))
    seen, counts = [], set()
    for rank in range(processes):
        shards = EvenShards(data, batch_size, num_replicas=processes, rank=rank)
        batches = [Batches(data)[indices] for indices in shards]
        counts.add(len(batches))
        assert len(batches) == len(shards)
        assert all(len(labels) <= batch_size and len(labels) > 0 for _, labels in batches)
        seen += [int(label) for _, labels in batches for label in labels]
    assert sorted(seen) == list(range(size)) and len(counts) == 1


def test_even_shards_refuse_more_batches_than_images(tmp_path) -> None:
    data = ImageTensors(torch.zeros(3, 1, 2, 2, dtype=torch.uint8), torch.arange(3))
    with pytest.raises(ValueError, match="3 images cannot be split into 1 batches on each of 4"):
        EvenShards(data, 1000, num_replicas=4, rank=0)


@pytest.mark.parametrize(("damage", "why"), [(b"", "result.json is empty"),
                                             (b'{"status": "compl', "result.json is not JSON"),
                                             (b"[1, 2]", "result.json holds no record")])
def test_a_damaged_result_is_listed_as_unreadable_and_the_table_still_printed(
        sweep, capsys, damage: bytes, why: str) -> None:
    damaged = next(sweep.glob("2_*")) / "result.json"
    damaged.write_bytes(damage)
    main([str(sweep)])
    table = capsys.readouterr().out
    row = next(line for line in table.splitlines() if "mlp_bn" in line)
    assert "1 unreadable" in row and "1 failed" in row
    assert "98.50" in table  # the other jobs' figures are there
    assert damaged.read_bytes() == damage  # the damaged file is left for inspection
    (job,) = [j for j in read_jobs(sweep) if j.folder == damaged.parent]
    assert job.status == "unreadable" and job.result["error"].startswith(why)
