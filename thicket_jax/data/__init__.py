"""Data: synthetic signal families (and, later, task datasets)."""
