"""Option values shared by the CLI and the API, in a module light enough for `--help`."""

# Encoders a graph-converted package can record (see `api.codecs_for`).
PREPROCESS_CHOICES = ("auto", "none", "raw", "slim", "imagenet", "keras-tf", "keras-torch",
                      "keras-caffe")

# Kernels for the single-image compiled program (see `packages.single_image`).
COMPILE_PLANS = ("mkl", "onednn", "onednn-cached")
