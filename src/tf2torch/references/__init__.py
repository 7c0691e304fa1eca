"""Every runnable original in one place: the model run by its own framework.

`tensorflow.py` (frozen GraphDefs, and the zoo's `.tflite`/`tests.h5` references), `keras.py`,
`tflite.py` (TensorFlow's interpreter), `mediapipe.py` (MediaPipe's runtime, in a venv of its
own), `layers.py` (their per-layer taps, named by `scopes.py`), and `standin.py` (the demo's
TensorFlow-built stand-in release). TensorFlow is imported lazily, only in these modules.
"""
