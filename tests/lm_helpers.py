"""Tiny language-model checkpoints written by the tests: GGUF files and HF directories."""

import json
from pathlib import Path

import numpy as np

from thicket_jax.models.lm_config import LMConfig
from thicket_jax.models.loading import permute_qk

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHAT_TEMPLATE = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content']"
                 " + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
                 "{{ '<|im_start|>assistant\n' }}{% endif %}")


def tiny_vocab():
  """Byte-level BPE: 3 specials, the 256 byte symbols, and a few merges."""
  from tokenizers import pre_tokenizers
  alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
  merges = [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("i", "s"), ("Ġ", "is")]
  tokens = SPECIALS + alphabet + ["".join(m) for m in merges]
  types = [3] * len(SPECIALS) + [1] * (len(tokens) - len(SPECIALS))
  return tokens, [" ".join(m) for m in merges], types


def tiny_config(family="llama", dtype="float32"):
  tokens, _, _ = tiny_vocab()
  return LMConfig.tiny(family, vocab_size=len(tokens), eos_ids=(0, 2), dtype=dtype)


def hf_tensors(params, cfg: LMConfig):
  """Our params dict -> HF names with [out, in] linear weights."""
  out = {"model.embed_tokens.weight": params["embed"]["embedding"],
         "model.norm.weight": params["final_norm"]["scale"]}
  if not cfg.tie_embeddings:
    out["lm_head.weight"] = params["lm_head"]["kernel"].T
  for i, layer in params["layers"].items():
    p = f"model.layers.{i}."
    out[p + "input_layernorm.weight"] = layer["attn_norm"]["scale"]
    out[p + "post_attention_layernorm.weight"] = layer["mlp_norm"]["scale"]
    for ours, theirs in (("q", "q_proj"), ("k", "k_proj"), ("v", "v_proj"), ("o", "o_proj")):
      out[p + f"self_attn.{theirs}.weight"] = layer["attn"][ours]["kernel"].T
      if "bias" in layer["attn"][ours]:
        out[p + f"self_attn.{theirs}.bias"] = layer["attn"][ours]["bias"]
    for ours in ("gate", "up", "down"):
      out[p + f"mlp.{ours}_proj.weight"] = layer["mlp"][ours]["kernel"].T
  return {k: np.ascontiguousarray(np.asarray(v, np.float32)) for k, v in out.items()}


def write_hf(directory: Path, params, cfg: LMConfig, shards: int = 1):
  """config.json + model.safetensors (or shards with an index) + tokenizer.json."""
  from safetensors.numpy import save_file
  directory.mkdir(parents=True, exist_ok=True)
  hf = {"model_type": cfg.family, "vocab_size": cfg.vocab_size, "hidden_size": cfg.dim,
        "num_hidden_layers": cfg.n_layers, "num_attention_heads": cfg.n_heads,
        "num_key_value_heads": cfg.n_kv_heads, "intermediate_size": cfg.ffn_dim,
        "rope_theta": cfg.rope_theta, "rms_norm_eps": cfg.norm_eps,
        "tie_word_embeddings": cfg.tie_embeddings, "eos_token_id": 2}
  (directory / "config.json").write_text(json.dumps(hf))
  tensors = hf_tensors(params, cfg)
  names = sorted(tensors)
  if shards == 1:
    save_file(tensors, str(directory / "model.safetensors"))
  else:
    weight_map = {}
    for s in range(shards):
      part = names[s::shards]
      fname = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
      save_file({n: tensors[n] for n in part}, str(directory / fname))
      weight_map.update({n: fname for n in part})
    (directory / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
  tokenizer_backend().save(str(directory / "tokenizer.json"))
  (directory / "tokenizer_config.json").write_text(json.dumps(
      {"chat_template": CHAT_TEMPLATE, "eos_token": "<|im_end|>", "bos_token": None}))


def tokenizer_backend():
  from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
  tokens, merges, _ = tiny_vocab()
  tk = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(tokens)},
                            merges=[tuple(m.split(" ")) for m in merges]))
  tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
  tk.decoder = decoders.ByteLevel()
  tk.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIALS])
  return tk


def write_gguf(path: Path, params, cfg: LMConfig, pre: str = "smollm"):
  """A float32 GGUF as llama.cpp's converter writes it (Q/K rows permuted for llama)."""
  import gguf
  w = gguf.GGUFWriter(str(path), arch=cfg.family)
  w.add_block_count(cfg.n_layers)
  w.add_context_length(256)
  w.add_embedding_length(cfg.dim)
  w.add_feed_forward_length(cfg.ffn_dim)
  w.add_head_count(cfg.n_heads)
  w.add_head_count_kv(cfg.n_kv_heads)
  w.add_rope_freq_base(cfg.rope_theta)
  w.add_layer_norm_rms_eps(cfg.norm_eps)
  tokens, merges, types = tiny_vocab()
  w.add_tokenizer_model("gpt2")
  w.add_tokenizer_pre(pre)
  w.add_token_list(tokens)
  w.add_token_merges(merges)
  w.add_token_types(types)
  w.add_eos_token_id(2)
  w.add_chat_template(CHAT_TEMPLATE)
  to_gguf = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
             "lm_head.weight": "output.weight"}
  layer = {"input_layernorm.weight": "attn_norm.weight", "post_attention_layernorm.weight": "ffn_norm.weight",
           "self_attn.q_proj.weight": "attn_q.weight", "self_attn.k_proj.weight": "attn_k.weight",
           "self_attn.v_proj.weight": "attn_v.weight", "self_attn.o_proj.weight": "attn_output.weight",
           "self_attn.q_proj.bias": "attn_q.bias", "self_attn.k_proj.bias": "attn_k.bias",
           "self_attn.v_proj.bias": "attn_v.bias", "mlp.gate_proj.weight": "ffn_gate.weight",
           "mlp.up_proj.weight": "ffn_up.weight", "mlp.down_proj.weight": "ffn_down.weight"}
  for name, arr in hf_tensors(params, cfg).items():
    if name.startswith("model.layers."):
      i, rest = name[len("model.layers."):].split(".", 1)
      gname = f"blk.{i}.{layer[rest]}"
    else:
      gname = to_gguf[name]
    if cfg.family == "llama" and gname.endswith(("attn_q.weight", "attn_k.weight")):
      arr = permute_qk(arr, cfg.n_heads if "attn_q" in gname else cfg.n_kv_heads)
    w.add_tensor(gname, np.ascontiguousarray(arr))
  w.write_header_to_file()
  w.write_kv_data_to_file()
  w.write_tensors_to_file()
  w.close()


def numpy_forward(params, cfg: LMConfig, tokens_bt):
  """Plain NumPy reference: logits [B, T, V] of a causal decoder (no padding)."""
  p = {k: v for k, v in params.items()}
  f = lambda a: np.asarray(a, np.float64)
  x = f(p["embed"]["embedding"])[tokens_bt]
  b, t = tokens_bt.shape
  pos = np.arange(t)
  hd = cfg.head_dim
  inv = cfg.rope_theta ** (-np.arange(0, hd, 2) / hd)
  ang = pos[:, None] * inv[None]
  cos, sin = np.cos(ang)[None, :, None], np.sin(ang)[None, :, None]

  def rms(x, w):
    return x / np.sqrt(np.mean(x * x, -1, keepdims=True) + cfg.norm_eps) * f(w)

  def rot(x):
    x1, x2 = x[..., :hd // 2], x[..., hd // 2:]
    return np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], -1)

  def lin(x, d, name):
    y = x @ f(d[name]["kernel"])
    return y + f(d[name]["bias"]) if "bias" in d[name] else y

  for i in range(cfg.n_layers):
    L = p["layers"][i]
    h = rms(x, L["attn_norm"]["scale"])
    q = rot(lin(h, L["attn"], "q").reshape(b, t, cfg.n_heads, hd))
    k = rot(lin(h, L["attn"], "k").reshape(b, t, cfg.n_kv_heads, hd))
    v = lin(h, L["attn"], "v").reshape(b, t, cfg.n_kv_heads, hd)
    rep = cfg.n_heads // cfg.n_kv_heads
    k, v = np.repeat(k, rep, axis=2), np.repeat(v, rep, axis=2)
    s = np.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(hd)
    s = np.where(np.tril(np.ones((t, t), bool)), s, -np.inf)
    a = np.exp(s - s.max(-1, keepdims=True))
    a /= a.sum(-1, keepdims=True)
    o = np.einsum("bhqk,bkhd->bqhd", a, v).reshape(b, t, -1)
    x = x + lin(o, L["attn"], "o")
    h = rms(x, L["mlp_norm"]["scale"])
    g = lin(h, L["mlp"], "gate")
    x = x + lin((g / (1 + np.exp(-g))) * lin(h, L["mlp"], "up"), L["mlp"], "down")
  x = rms(x, p["final_norm"]["scale"])
  head = f(p["embed"]["embedding"]).T if cfg.tie_embeddings else f(p["lm_head"]["kernel"])
  return x @ head


def write_run_assets(d: Path, lm, n_questions: int) -> tuple[str, str]:
  """A GGUF of `lm` and a JSONL arithmetic task in `d`: (model path, `jsonl:` task name) for `thicket run`."""
  write_gguf(d / "tiny.gguf", lm.params, lm.config)
  task = d / "arith.jsonl"
  task.write_text("\n".join(json.dumps({"question": f"What is {i} + {i}?", "answer": str(2 * i)})
                            for i in range(n_questions)) + "\n")
  return str(d / "tiny.gguf"), f"jsonl:{task}"
