import json

import numpy as np
import pytest

from thicket_jax import cli
from thicket_jax import run as run_mod
from test_lm import random_lm
from lm_helpers import write_run_assets


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
  return write_run_assets(tmp_path_factory.mktemp("model"), random_lm("llama", seed=11), 30)


def args(model, task, out, *extra):
  return ["run", "--model", model, "--task", task, "--population", "6", "--sigmas", "0.05,0.1",
          "--top-k", "1,3", "--train-examples", "4", "--test-examples", "5", "--max-new-tokens", "6",
          "--chunk-size", "2", "--out", str(out), "--no-progress", *extra]


def test_tiny_end_to_end_run_resume_and_eval(tiny_model, tmp_path, capsys):
  model, task = tiny_model
  out = tmp_path / "run"
  cfg = run_mod.RunConfig(model=model, task=task, population=6, sigmas=(0.05, 0.1), top_ks=(1, 3),
                          train_examples=4, test_examples=5, max_new_tokens=6, chunk_size=2)

  class Stop(Exception):
    pass

  def stop(done, total):
    if done >= 4:
      raise Stop

  with pytest.raises(Stop):
    run_mod.run(cfg, out, progress=False, on_block=stop, log=lambda *_: None)
  assert len(list((out / "population" / "blocks").glob("members_*.json"))) == 2
  assert not (out / "results.json").exists()

  seen = []
  resumed = run_mod.run(cfg, out, progress=False, on_block=lambda d, t: seen.append(d), log=lambda *_: None)
  assert seen == [2, 4, 6]
  fresh = run_mod.run(cfg, tmp_path / "fresh", progress=False, log=lambda *_: None)
  for key in ("base", "ensemble", "members", "per_sigma", "density"):
    assert resumed[key] == fresh[key], key
  assert len(fresh["members"]) == 6 and [e["k"] for e in fresh["ensemble"]] == [1, 3]
  assert set(fresh["per_sigma"]) == {"0.05", "0.1"}
  assert (out / "population.png").stat().st_size > 10_000
  rewards = json.loads((out / "population" / "rewards.json").read_text())["rewards"]
  assert np.asarray(rewards).shape == (6, 4)

  # The CLI on the same directory: everything is read back, same results.
  assert cli.main(args(model, task, out)) == 0
  assert json.loads((out / "results.json").read_text())["ensemble"] == fresh["ensemble"]
  assert "ensemble test acc" in capsys.readouterr().out
  assert cli.main(["eval", "--run", str(out), "--no-progress"]) == 0
  assert "base accuracy" in capsys.readouterr().out


@pytest.mark.parametrize("change,message", [
    (["--task", "nope"], "unknown task 'nope'"),
    (["--model", "nope-model"], "unknown model 'nope-model'"),
    (["--top-k", "1,99"], "k=99 must be between 1 and population=6"),
])
def test_bad_arguments_stop_with_one_message_and_write_nothing(tiny_model, tmp_path, capsys, change, message):
  model, task = tiny_model
  a = args(model, task, tmp_path / "out")
  i = a.index(change[0])
  a[i + 1] = change[1]
  assert cli.main(a) == 2
  assert message in capsys.readouterr().err
  assert not (tmp_path / "out").exists()


def test_a_directory_of_another_run_is_refused(tiny_model, tmp_path, capsys):
  model, task = tiny_model
  out = tmp_path / "out"
  out.mkdir()
  (out / "run.json").write_text(json.dumps({**run_mod.RunConfig(model=model, task=task).to_dict(), "seed": 9}))
  assert cli.main(args(model, task, out)) == 2
  assert "holds a different run" in capsys.readouterr().err
  assert sorted(p.name for p in out.iterdir()) == ["run.json"]


def test_malformed_jsonl_is_reported(tiny_model, tmp_path, capsys):
  model, _ = tiny_model
  bad = tmp_path / "bad.jsonl"
  bad.write_text('{"question": "a", "answer": "1"}\n{oops\n')
  assert cli.main(args(model, f"jsonl:{bad}", tmp_path / "out")) == 2
  assert "bad.jsonl:2: not valid JSON" in capsys.readouterr().err
