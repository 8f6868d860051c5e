import json
import subprocess
import sys

from thicket_jax import cli


def test_toy_main_job_end_to_end_and_resume(tmp_path, capsys):
  out = tmp_path / "toy"
  assert cli.main(["toy", "--tiny", "--out", str(out), "--no-progress"]) == 0
  first = json.loads((out / "results.json").read_text())
  assert (out / "population.png").stat().st_size > 10_000
  assert {e["k"] for e in first["ensemble"]} == {1, 5}
  assert len(first["members"]) == 24 and 0 <= first["base"]["test_accuracy"] <= 1
  printed = capsys.readouterr().out
  assert "ensemble test acc" in printed
  # Rerun with the same arguments: every block is read back, results identical.
  assert cli.main(["toy", "--tiny", "--out", str(out), "--no-progress"]) == 0
  second = json.loads((out / "results.json").read_text())
  assert second["ensemble"] == first["ensemble"] and second["members"] == first["members"]


def test_cli_errors_are_one_clear_line(tmp_path, capsys):
  assert cli.main(["toy", "--tiny", "--top-k", "1,99", "--out", str(tmp_path)]) == 2
  assert "k=99 must be between 1 and population=24" in capsys.readouterr().err


def test_console_script_entry_point():
  proc = subprocess.run([sys.executable, "-m", "thicket_jax.cli", "--version"], capture_output=True, text=True)
  assert proc.returncode == 0 and proc.stdout.strip()
