"""Model packages and the repository: what a conversion leaves behind and how it is used.

A package is a folder (`package.py`: safetensors weights + `card.py`'s card + the README that
`modelcard.py` renders) kept in the repository (`repository.py`); `codecs`/`codec_policy.py`
are its image encoder and label decoder; `export.py`, `inference.py` and `predict.py` use a
loaded package. Imports verification, references, conversion and sources below it.
"""
