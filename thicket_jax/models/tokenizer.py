"""Byte-level BPE tokenizers (from GGUF metadata or an HF tokenizer.json) and chat templates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

# Pre-tokenizer regexes of the GGUF `tokenizer.ggml.pre` values we support.
_QWEN2_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")
_LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
                 r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
_CONTROL = 3  # llama.cpp token type of special tokens


class Tokenizer:
  """`encode(text) -> ids`, `decode(ids) -> text`, `chat(messages) -> prompt text`."""

  def __init__(self, backend, chat_template: str | None = None, bos_token: str = "",
               eos_token: str = ""):
    self.backend = backend
    self.chat_template = chat_template
    self.bos_token, self.eos_token = bos_token, eos_token

  @property
  def vocab_size(self) -> int:
    return self.backend.get_vocab_size(with_added_tokens=True)

  def encode(self, text: str) -> list[int]:
    """Token ids of `text`; special tokens written in the text (`<|im_start|>`) are recognised."""
    return self.backend.encode(text, add_special_tokens=False).ids

  def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
    return self.backend.decode([int(i) for i in ids if i >= 0], skip_special_tokens=skip_special_tokens)

  def token_id(self, token: str) -> int | None:
    return self.backend.token_to_id(token)

  def chat(self, messages: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
    """Renders the model's own chat template (jinja2), as `transformers` does."""
    if not self.chat_template:
      raise ValueError("this tokenizer has no chat template; pass chat=False and a plain prompt")
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message):
      raise jinja2.exceptions.TemplateError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = raise_exception
    return env.from_string(self.chat_template).render(
        messages=messages, add_generation_prompt=add_generation_prompt,
        bos_token=self.bos_token, eos_token=self.eos_token)

  @classmethod
  def from_gguf(cls, reader) -> "Tokenizer":
    """Builds the byte-level BPE described by a GGUF file's `tokenizer.ggml.*` metadata."""
    from tokenizers import AddedToken, Regex, Tokenizer as Backend, decoders, models, pre_tokenizers

    get = lambda k, d=None: reader.fields[k].contents() if k in reader.fields else d
    model = get("tokenizer.ggml.model")
    if model != "gpt2":
      raise ValueError(f"unsupported GGUF tokenizer model {model!r} (byte-level BPE 'gpt2' is supported)")
    tokens = get("tokenizer.ggml.tokens")
    types = get("tokenizer.ggml.token_type", [1] * len(tokens))
    merges = [tuple(m.split(" ", 1)) for m in get("tokenizer.ggml.merges", [])]
    backend = Backend(models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=merges))
    pre = get("tokenizer.ggml.pre", "gpt2")
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    if pre in ("smollm", "starcoder", "refact"):
      backend.pre_tokenizer = pre_tokenizers.Sequence([
          pre_tokenizers.Digits(individual_digits=True),
          pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    elif pre == "qwen2":
      backend.pre_tokenizer = pre_tokenizers.Sequence([
          pre_tokenizers.Split(Regex(_QWEN2_REGEX), behavior="isolated"), byte_level])
    elif pre in ("llama-bpe", "llama3"):
      backend.pre_tokenizer = pre_tokenizers.Sequence([
          pre_tokenizers.Split(Regex(_LLAMA3_REGEX), behavior="isolated"), byte_level])
    else:  # plain GPT-2
      backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens([AddedToken(t, special=True, normalized=False)
                                for t, ty in zip(tokens, types) if ty == _CONTROL])
    bos, eos = get("tokenizer.ggml.bos_token_id"), get("tokenizer.ggml.eos_token_id")
    return cls(backend, get("tokenizer.chat_template"),
               tokens[bos] if bos is not None and bos < len(tokens) else "",
               tokens[eos] if eos is not None and eos < len(tokens) else "")

  @classmethod
  def from_hf(cls, directory: str | Path) -> "Tokenizer":
    """Reads `tokenizer.json` (and the chat template from `tokenizer_config.json`) of an HF directory."""
    from tokenizers import Tokenizer as Backend
    directory = Path(directory)
    backend = Backend.from_file(str(directory / "tokenizer.json"))
    cfg: dict[str, Any] = {}
    if (directory / "tokenizer_config.json").exists():
      cfg = json.loads((directory / "tokenizer_config.json").read_text())
    token = lambda v: v.get("content", "") if isinstance(v, dict) else (v or "")
    template = cfg.get("chat_template")
    if template is None and (directory / "chat_template.jinja").exists():
      template = (directory / "chat_template.jinja").read_text()
    return cls(backend, template, token(cfg.get("bos_token")), token(cfg.get("eos_token")))
