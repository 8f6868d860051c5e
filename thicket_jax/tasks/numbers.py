"""Normalisation of numeric answers: "1,000", "1000.0", "$1000" and "1000" are one key."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

NUMBER = re.compile(r"-?\$?\s?\d[\d,]*(?:\.\d+)?|-?\.\d+")


def normalise_number(text: str) -> str | None:
  """Canonical decimal string of a number written with commas, $ or trailing zeros; None if not a number."""
  s = text.strip().replace(",", "").replace("$", "").replace(" ", "").rstrip(".")
  if s.endswith("%"):
    s = s[:-1]
  try:
    d = Decimal(s)
  except InvalidOperation:
    return None
  if not d.is_finite():
    return None
  if d == d.to_integral_value():
    return str(int(d))
  return format(d.normalize(), "f")


def last_number(text: str) -> str | None:
  """The last number in `text`, normalised."""
  found = NUMBER.findall(text)
  for candidate in reversed(found):
    n = normalise_number(candidate)
    if n is not None:
      return n
  return None
