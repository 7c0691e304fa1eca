"""Small shared utilities every layer may use: terminal tables, progress bars, option values.

Nothing here imports another tf2torch module (`tf2torch.errors`, the user-facing error
vocabulary, sits at this level too).
"""
