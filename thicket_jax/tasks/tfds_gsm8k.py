"""GSM8K through tensorflow-datasets: the catalog builder online, or offline from a manual directory.

Offline, `Gsm8kManual` (the catalog builder reading `train.jsonl` / `test.jsonl`
from `manual_dir`) is built as array_record and read back with a data source:
no TensorFlow and no network needed.
"""

from __future__ import annotations

from pathlib import Path

from thicket_jax.tasks.base import Example
from thicket_jax.tasks.gsm8k import GSM8K


def _builder_class():
  import tensorflow_datasets as tfds
  from tensorflow_datasets.text.gsm8k.gsm8k import Gsm8k

  class Gsm8kManual(Gsm8k, skip_registration=True):
    """tfds' `gsm8k` builder reading the official jsonl files from `manual_dir`."""
    name = "gsm8k"
    MANUAL_DOWNLOAD_INSTRUCTIONS = "Place train.jsonl and test.jsonl of openai/grade-school-math here."

    def _split_generators(self, dl_manager):
      manual = Path(dl_manager.manual_dir)
      splits = {}
      for split in ("train", "test"):
        path = manual / f"{split}.jsonl"
        if not path.exists():
          raise FileNotFoundError(f"{path} is missing; {self.MANUAL_DOWNLOAD_INSTRUCTIONS}")
        splits[split] = self._generate_examples(path)
      return splits

  return tfds, Gsm8kManual


def load(split: str, data_dir: str | Path, manual_dir: str | Path | None = None) -> list[Example]:
  """GSM8K `split` ("train" / "test") as Examples, built with tfds on first use.

  With `manual_dir`, builds offline from its jsonl files; without, uses tfds'
  catalog builder (which downloads).
  """
  tfds, manual_cls = _builder_class()
  if manual_dir is not None:
    builder = manual_cls(data_dir=str(data_dir), file_format="array_record")
    config = tfds.download.DownloadConfig(manual_dir=str(manual_dir))
  else:
    builder = tfds.builder("gsm8k", data_dir=str(data_dir), file_format="array_record")
    config = None
  if not builder.is_prepared():
    builder.download_and_prepare(download_config=config)
  source = builder.as_data_source(split=split)
  out = []
  for i in range(len(source)):
    row = source[i]
    text = lambda k: row[k].decode() if isinstance(row[k], bytes) else str(row[k])
    out.append(GSM8K.example(text("question"), text("answer"), source=f"tfds:{split}", index=i))
  return out
