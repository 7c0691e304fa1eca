"""TF V2 checkpoints (tensor bundles) read with numpy and the standard library."""

from tf2torch.sources.checkpoint.reader import FORMAT, find_runnables, read_checkpoint, release_meta

__all__ = ["FORMAT", "find_runnables", "read_checkpoint", "release_meta"]
