import numpy as np
import pytest

import thicket_jax as tj


def np_ranking(scores):
  key = [(1 if np.isnan(s) else 0, 0.0 if np.isnan(s) else -s, i) for i, s in enumerate(scores)]
  return [t[2] for t in sorted(key)]


def np_vote(answers_kn, abstain):
  out = []
  for col in answers_kn.T:
    counts = {}
    for a in col:
      if a != abstain:
        counts[a] = counts.get(a, 0) + 1
    if not counts:
      out.append(abstain)
      continue
    best = max(counts.values())
    tied = {a for a, c in counts.items() if c == best}
    out.append(next(a for a in col if a in tied))  # first (best-ranked) member among the tied
  return np.array(out)


@pytest.mark.parametrize("seed", range(20))
def test_top_k_matches_numpy_with_ties_and_nans(seed):
  rng = np.random.default_rng(seed)
  n = int(rng.integers(1, 40))
  scores = rng.integers(0, 5, n).astype(np.float32)  # many ties
  scores[rng.random(n) < 0.15] = np.nan
  k = int(rng.integers(1, n + 1))
  np.testing.assert_array_equal(np.asarray(tj.top_k(scores, k)), np_ranking(scores)[:k])


def test_top_k_ties_go_to_lower_id_and_signed_zero_is_one_value():
  np.testing.assert_array_equal(tj.top_k(np.array([0.0, 1.0, -0.0, 1.0], np.float32), 4), [1, 3, 0, 2])


@pytest.mark.parametrize("seed", range(30))
def test_majority_vote_matches_numpy(seed):
  rng = np.random.default_rng(seed)
  k, n = int(rng.integers(1, 12)), int(rng.integers(1, 30))
  answers = rng.integers(-1, 4, (k, n)).astype(np.int32)  # -1 abstains; few values -> ties
  np.testing.assert_array_equal(np.asarray(tj.majority_vote(answers, -1)), np_vote(answers, -1))


def test_majority_vote_rules():
  answers = np.array([[5, -1, 7, -1],
                      [6, -1, 8, 3],
                      [6, -1, 7, 3],
                      [5, -1, 8, 4]], np.int32)
  # col 0: 5 and 6 tie 2-2, member 0 (best) said 5; col 1: all abstain; col 2: tie -> 7; col 3: 3.
  np.testing.assert_array_equal(tj.majority_vote(answers), [5, -1, 7, 3])


def test_majority_vote_custom_abstain_and_errors():
  np.testing.assert_array_equal(tj.majority_vote(np.array([[9, 1], [9, 2], [1, 2]]), abstain=9), [1, 2])
  with pytest.raises(ValueError, match=r"\[K, n\]"):
    tj.majority_vote(np.array([1, 2, 3]))
  with pytest.raises(TypeError, match="integer"):
    tj.majority_vote(np.array([[0.5]]))


def test_top_k_errors_name_k_and_shape():
  with pytest.raises(ValueError, match="k=5 is larger than the population"):
    tj.top_k(np.zeros(3), 5)
  with pytest.raises(ValueError, match="k must be a positive"):
    tj.top_k(np.zeros(3), 0)
  with pytest.raises(ValueError, match="average over examples"):
    tj.top_k(np.zeros((3, 2)), 1)


def test_mean_ensemble_plain_and_weighted():
  preds = np.arange(12, dtype=np.float32).reshape(3, 4)
  np.testing.assert_allclose(tj.mean_ensemble(preds), preds.mean(0))
  np.testing.assert_allclose(tj.mean_ensemble(preds, np.array([1.0, 0.0, 1.0])), (preds[0] + preds[2]) / 2)
  with pytest.raises(ValueError, match="weights"):
    tj.mean_ensemble(preds, np.ones(2))
