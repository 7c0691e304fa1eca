"""Run a `.tflite` file through MediaPipe's own runtime; executed by a Python that has mediapipe.

    python _mediapipe_worker.py MODEL.tflite N_OUTPUTS IN.npz OUT.npz

Standalone on purpose: it runs in a separate environment (mediapipe 0.10 pins numpy<2 and
protobuf<5, which TensorFlow does not accept), so it imports neither tf2torch nor TensorFlow.
IN.npz holds `x`, a float32 NHWC batch; OUT.npz gets `o0`, `o1`, … (each (N, -1), flattened
in the file's output order). The graph feeds each sample as a row-major MATRIX packet
(TensorConverterCalculator copies it unchanged into the model's input tensor) to an
InferenceCalculator with MediaPipe's custom-op resolver — the one its own face, pose and hand
graphs use — on the plain TFLite CPU kernels.
"""

from __future__ import annotations

import importlib.util
import sys
import types

import numpy as np

# mediapipe/__init__ imports its drawing utilities (cv2, matplotlib) and audio (sounddevice);
# the calculator graph needs none of them, so absent ones are stubbed rather than installed.
for _top, _names in (("cv2", ["cv2"]), ("matplotlib", ["matplotlib", "matplotlib.pyplot"]),
                     ("sounddevice", ["sounddevice"])):
    if importlib.util.find_spec(_top) is None:
        sys.modules.update({name: types.ModuleType(name) for name in _names})

from mediapipe.python import packet_creator, packet_getter  # noqa: E402
from mediapipe.python._framework_bindings import calculator_graph  # noqa: E402


def graph_config(model: str, outputs: int) -> str:
    ranges = " ".join(f"ranges: {{begin: {i} end: {i + 1}}}" for i in range(outputs))
    lines = ['input_stream: "matrix"']
    lines += [f'output_stream: "f{i}"' for i in range(outputs)]
    lines += [
        'node { calculator: "TensorConverterCalculator" input_stream: "MATRIX:matrix"',
        '  output_stream: "TENSORS:inputs"',
        "  options { [mediapipe.TensorConverterCalculatorOptions.ext] { row_major_matrix: true } } }",
        'node { calculator: "TfLiteCustomOpResolverCalculator"',
        '  output_side_packet: "OP_RESOLVER:op_resolver" }',
        'node { calculator: "InferenceCalculator" input_side_packet: "OP_RESOLVER:op_resolver"',
        '  input_stream: "TENSORS:inputs" output_stream: "TENSORS:outputs"',
        f'  options {{ [mediapipe.InferenceCalculatorOptions.ext] {{ model_path: "{model}"',
        "    delegate { tflite {} } } } }",
        'node { calculator: "SplitTensorVectorCalculator" input_stream: "outputs"',
        *[f'  output_stream: "t{i}"' for i in range(outputs)],
        f"  options {{ [mediapipe.SplitVectorCalculatorOptions.ext] {{ {ranges} }} }} }}",
    ]
    lines += [f'node {{ calculator: "TensorsToFloatsCalculator" input_stream: "TENSORS:t{i}" '
              f'output_stream: "FLOATS:f{i}" }}' for i in range(outputs)]
    return "\n".join(lines)


def main(model: str, outputs: int, inputs: str, result: str) -> None:
    batch = np.load(inputs)["x"].astype(np.float32)
    graph = calculator_graph.CalculatorGraph(graph_config=graph_config(model, outputs))
    got: dict[int, dict[int, np.ndarray]] = {i: {} for i in range(outputs)}
    for i in range(outputs):
        graph.observe_output_stream(
            f"f{i}", lambda _, packet, i=i: got[i].__setitem__(
                packet.timestamp.value, np.asarray(packet_getter.get_float_list(packet), np.float32)))
    graph.start_run()
    for n, sample in enumerate(batch):
        rows = sample.reshape(sample.shape[0], -1) if sample.ndim >= 2 else sample.reshape(1, -1)
        graph.add_packet_to_input_stream(
            "matrix", packet_creator.create_matrix(np.ascontiguousarray(rows)).at(n))
    graph.close()
    np.savez(result, **{f"o{i}": np.stack([got[i][n] for n in range(len(batch))])
                        for i in range(outputs)})


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4])
