"""Tasks: prompts, answer extraction and rewards, with offline data sources."""

from thicket_jax.tasks.base import Example, Task
from thicket_jax.tasks.registry import TASKS, load_task

__all__ = ["Example", "TASKS", "Task", "load_task"]
