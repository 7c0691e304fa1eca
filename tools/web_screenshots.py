"""Screenshots of the repository's pages for the docs, taken in Debian's headless Chromium.

    .venv/bin/python tools/web_screenshots.py --model mobilenet_v2_1.4_224 --out docs/

Serves $TF2TORCH_HOME (or --home) on a loopback port, opens the index and the model's page,
tries the model on the astronaut sample, and writes `web_index.png` and `web_model.png`.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as `tf2torch serve` runs, before torch loads
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from browser import chromium, live_server
from tf2torch.packages import repository
from tf2torch.web.app import Settings, create_app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--home", type=Path, default=None, help="repository home "
                        "(default $TF2TORCH_HOME)")
    parser.add_argument("--model", required=True, help="the package whose page to show")
    parser.add_argument("--out", type=Path, default=Path("docs"))
    parser.add_argument("--width", type=int, default=1280)
    args = parser.parse_args()
    app = create_app(Settings(home=args.home or repository.home()))
    with live_server(app) as url, chromium() as browser:
        page = browser.new_page(viewport={"width": args.width, "height": 720},
                                device_scale_factor=1)
        page.goto(url)
        page.screenshot(path=str(args.out / "web_index.png"), full_page=True)
        page.click(f"text={args.model}")
        page.check("input[value='astronaut.jpg']")
        page.click("button[type=submit]")
        page.wait_for_selector("table.predictions, table.outputs")
        page.set_viewport_size({"width": args.width, "height": 1500})
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(args.out / "web_model.png"), full_page=False)
    print(f"wrote {args.out / 'web_index.png'} and {args.out / 'web_model.png'}")


if __name__ == "__main__":
    main()
