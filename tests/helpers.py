"""Small real models and data shared by the tests."""

import jax
import jax.numpy as jnp


def mlp_params(key, sizes=(6, 16, 16, 3), dtype=jnp.float32):
  keys = jax.random.split(key, len(sizes) - 1)
  return {f"layer{i}": {"w": (jax.random.normal(k, (a, b)) / a**0.5).astype(dtype),
                        "b": jnp.zeros(b, dtype)}
          for i, (k, a, b) in enumerate(zip(keys, sizes[:-1], sizes[1:]))}


def mlp_logits(params, x):
  h = x
  n = len(params)
  for i in range(n):
    h = h @ params[f"layer{i}"]["w"].astype(jnp.float32) + params[f"layer{i}"]["b"].astype(jnp.float32)
    if i < n - 1:
      h = jnp.tanh(h)
  return h


def log_likelihood(params, x, y):
  """Per-example rewards [n]."""
  return jnp.take_along_axis(jax.nn.log_softmax(mlp_logits(params, x)), y[:, None], 1)[:, 0]


def mean_log_likelihood(params, x, y):
  """Scalar reward."""
  return jnp.mean(log_likelihood(params, x, y))


def predict_label(params, x):
  return jnp.argmax(mlp_logits(params, x), -1).astype(jnp.int32)


def data(n=32, d=6, classes=3, seed=1):
  kx, ky = jax.random.split(jax.random.key(seed))
  return jax.random.normal(kx, (n, d)), jax.random.randint(ky, (n,), 0, classes)
