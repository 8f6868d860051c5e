"""Countdown: combine the given numbers with + - * / to hit a target.

Expressions are parsed with a small recursive-descent parser over numbers,
`+ - * /` and parentheses, evaluated with exact fractions: never `eval`.
"""

from __future__ import annotations

import random
import re
from fractions import Fraction

from thicket_jax.tasks.base import Example, Task

_TOKEN = re.compile(r"\s*(?:(\d+)|([-+*/()]))")
_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.S)
MAX_CHARS = 200


class ExpressionError(ValueError):
  pass


def parse(expression: str) -> tuple[Fraction, list[int]]:
  """Value and the integer literals of an arithmetic expression (numbers, + - * /, parentheses).

  Raises:
    ExpressionError: anything else (names, '**', unary minus, unbalanced parentheses,
      division by zero, more than 200 characters).
  """
  text = expression.strip()
  if not text or len(text) > MAX_CHARS:
    raise ExpressionError("empty or too long")
  tokens, pos = [], 0
  while pos < len(text):
    m = _TOKEN.match(text, pos)
    if not m or m.end() == pos:
      if text[pos:].strip() == "":
        break
      raise ExpressionError(f"unexpected character {text[pos]!r}")
    tokens.append(m.group(1) or m.group(2))
    pos = m.end()
  literals: list[int] = []
  i = 0

  def peek():
    return tokens[i] if i < len(tokens) else None

  def take():
    nonlocal i
    i += 1
    return tokens[i - 1]

  def factor(depth):
    if depth > 50:
      raise ExpressionError("nested too deeply")
    t = peek()
    if t is None:
      raise ExpressionError("unexpected end")
    if t == "(":
      take()
      v = expr(depth + 1)
      if peek() != ")":
        raise ExpressionError("unbalanced parentheses")
      take()
      return v
    if t.isdigit():
      take()
      literals.append(int(t))
      return Fraction(int(t))
    raise ExpressionError(f"unexpected {t!r}")

  def term(depth):
    v = factor(depth)
    while peek() in ("*", "/"):
      op, rhs = take(), factor(depth)
      if op == "/" and rhs == 0:
        raise ExpressionError("division by zero")
      v = v * rhs if op == "*" else v / rhs
    return v

  def expr(depth=0):
    v = term(depth)
    while peek() in ("+", "-"):
      op, rhs = take(), term(depth)
      v = v + rhs if op == "+" else v - rhs
    return v

  value = expr()
  if i != len(tokens):
    raise ExpressionError(f"unexpected {tokens[i]!r}")
  return value, literals


def value_key(value: Fraction) -> str:
  """Vote key of an exact value: '24', '-3' or '7/2'."""
  return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


def generate(seed: int, n: int, min_numbers: int = 3, max_numbers: int = 4) -> list[Example]:
  """`n` solvable puzzles: 3-4 numbers in 1..99 and a target in 1..999 reached by a random expression."""
  rng = random.Random(seed)
  out: list[Example] = []
  seen = set()
  while len(out) < n:
    numbers = [rng.randint(1, 99) for _ in range(rng.randint(min_numbers, max_numbers))]
    order = numbers[:]
    rng.shuffle(order)
    expr, value = str(order[0]), Fraction(order[0])
    for x in order[1:]:
      op = rng.choice("+-*/")
      if op == "/" and (value % x != 0):
        op = "+"
      if op == "-" and value - x <= 0:
        op = "+"
      value = {"+": value + x, "-": value - x, "*": value * x, "/": value / x}[op]
      expr = f"({expr} {op} {x})"
    if value.denominator != 1 or not 1 <= value <= 999 or (tuple(sorted(numbers)), value) in seen:
      continue
    seen.add((tuple(sorted(numbers)), value))
    question = (f"Using the numbers {numbers}, create an equation that equals {int(value)}. You can use "
                "+, -, * and /, and each number must be used exactly once.")
    out.append(Example(question=question, answer=str(int(value)),
                       meta={"numbers": numbers, "target": int(value), "solution": expr[1:-1] if len(order) > 1 else expr}))
  return out


class Countdown(Task):
  """Reward 1 for a valid expression using every number once and hitting the target, +0.1 for format."""
  name = "countdown"
  instruction = ("Think it through, then give only the final equation inside <answer> </answer> tags, "
                 "for example <answer>(1 + 2) * 3</answer>.")

  @staticmethod
  def _expression(response: str) -> str | None:
    found = _ANSWER.findall(response)
    if not found:
      return None
    return found[-1].split("=")[0]

  def extract(self, response: str, ex: Example | None = None) -> str | None:
    """The value of the answer expression; None if missing, malformed, or (given `ex`) not using
    every number exactly once."""
    expr = self._expression(response)
    if expr is None:
      return None
    try:
      value, literals = parse(expr)
    except ExpressionError:
      return None
    if ex is not None and sorted(literals) != sorted(ex.meta["numbers"]):
      return None
    return value_key(value)

  def reward(self, response: str, ex: Example) -> float:
    bonus = 0.1 if _ANSWER.search(response) else 0.0
    return float(self.is_correct(self.extract(response, ex), ex)) + bonus
