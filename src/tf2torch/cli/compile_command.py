"""`tf2torch compile NAME`: build, verify and store a package's compiled form for this machine.

Registered in `commands.COMMANDS`.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict

from tf2torch.cli.render import emit_json
from tf2torch.util.choices import COMPILE_PLANS

HELP = "compile a package ahead of time for this machine (AOTInductor), verified"
DESCRIPTION = """\
Exports the package's inference form (BatchNorm folded, channels-last), compiles it with
AOTInductor (weights frozen in, oneDNN-prepacked convolutions) as two programs: one for
any batch size where the network allows it, and one specialised to a single image (faster
at batch 1: its loops parallelise within the image). Both are verified against the
original's outputs that `convert` recorded in the package, by the same bounds, the
single-image one image by image; only then is the result stored, under compiled/.

After that, `tf2torch.load(NAME, inference=True)`, `predict --backend torch-fast` and
`serve` run the compiled form, loaded in well under a second with nothing compiled. It is
keyed to this torch version, machine, CPU instruction set and vendor, and sealed with a
key only this user's tf2torch home holds: on another machine, another torch, other weights
or in a package copied from elsewhere it is ignored with a note, never loaded. Compiling takes
30-90 s for a MobileNetV2 here, a few minutes for a ResNet50.

Which kernels run the single-image program's layers is planned per CPU (--plan): `mkl`
makes its 1×1 layers MKL matrix products and its depthwise layers sums Inductor fuses
(faster on Intel CPUs, the default there); `onednn` leaves them oneDNN convolutions through
ATen; `onednn-cached` hands every convolution to tf2torch's own oneDNN op, which keeps each
layer's primitive and packed weight between calls and fuses the residual add (faster again
on AMD EPYC, the default on every CPU not Intel's where the op builds: the [native] extra
and a C++ compiler; else `onednn`). Under `onednn-cached` the any-batch program's
convolutions run the op too, on oneDNN's blocked layout (16 or 8 channels a block, by the
CPU's vector width) from the first layer to the last pool, which oneDNN's kernels run faster
at large batches. All are verified the same way.

oneDNN packs convolution weights for the thread count of the compiling process. Where it
would pack one differently at another count the thread rule may pick (fewer threads when
other processes keep cores busy), that count would reorder the weight on every call: the
output says so, per count and layer (`one_image_repacked` in --json); the `onednn` plan
takes such 1×1 and depthwise layers from oneDNN (MKL products, sums) and names them. With
TF2TORCH_THREADS set, the compile runs at that count, and packs for it.

examples:
  tf2torch compile mobilenet_v2_1.4_224
  tf2torch convert mobilenet_v2_1.4_224.tgz --compile     the same, right after converting
  tf2torch compile mobilenet_v2_1.4_224 --plan onednn    oneDNN's kernels, whatever the CPU
  tf2torch compile mobilenet_v2_1.4_224 --plan onednn-cached    through tf2torch's own op
"""


def compile_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="repository name or package folder")
    p.add_argument("--plan", choices=COMPILE_PLANS, default=None,
                   help="kernels for the single-image program: mkl (1×1 layers as MKL "
                   "products, depthwise as fused sums), onednn (oneDNN convolutions through "
                   "ATen) or onednn-cached (through tf2torch's own op, primitives kept; the "
                   "[native] extra); default: mkl on Intel CPUs, onednn-cached on others "
                   "where the op builds, else onednn")
    p.add_argument("--json", action="store_true", help="machine-readable output on stdout")


def compile_command(args: argparse.Namespace) -> int:
    from tf2torch.api import compile_package

    manifest = compile_package(args.name, plan=args.plan)
    if args.json:
        emit_json({**asdict(manifest), "key": manifest.target.key})
        return 0
    single = " and a single-image program" if manifest.one_image_sha256 else ""
    print(f"compiled for {manifest.target.key} in {manifest.compile_seconds:.0f} s "
          f"(batch {manifest.batch[0]}-{manifest.batch[1]}{single})")
    print(f"verified against {manifest.checked_against}: PASS")
    if manifest.one_image_plan:
        plan = manifest.one_image_plan
        taken = plan.get("taken_from_onednn") or []
        print(f"single-image program: plan {plan['plan']} ({plan['why']})"
              + (f"; {len(taken)} layer(s) taken from oneDNN, which packs their weights "
                 f"differently per thread count ({', '.join(taken)})" if taken else ""))
        if plan.get("any_batch_block"):
            print("any-batch program: convolutions through tf2torch's op, on blocks of "
                  f"{plan['any_batch_block']} channels")
    for count, names in (manifest.one_image_repacked or {}).items():
        print(f"note: at {count} thread(s), oneDNN would reorder {len(names)} convolution "
              f"weight(s) of the single-image program on every call ({', '.join(names)}); "
              f"`TF2TORCH_THREADS={count} tf2torch compile {args.name}` packs them for "
              f"{count} thread(s) instead")
    return 0
