"""Model definitions (Flax) and pure apply functions over parameter pytrees."""
