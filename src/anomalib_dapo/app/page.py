"""The inspection page (Gradio) and its command, ``dapo-app``.

Started with ``dapo-app --weights learned.ckpt`` (or an export); it serves on 127.0.0.1 only and sends no
usage statistics (Gradio's analytics are switched off before Gradio is imported).
"""

import argparse
import html
import os
from collections.abc import Sequence

from PIL import Image

from anomalib_dapo import knowledge
from anomalib_dapo.app.inspector import Inspector, load_inspector
from anomalib_dapo.visualization import LegendEntry

# Gradio reads the analytics switch when it is imported.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
import gradio as gr

HOST = "127.0.0.1"


def legend_html(legend: Sequence[LegendEntry], shares: dict[str, float]) -> str:
    """The legend as page text: one swatch per defect type, its name and its share of the image's pixels."""
    rows = "".join(
        f'<li class="dapo-type"><span style="display:inline-block;width:1em;height:1em;'
        f'background:rgb{entry.colour}"></span> <span class="dapo-type-name">{html.escape(entry.name)}</span>'
        f" {100 * shares[entry.name]:.1f}% of the pixels</li>"
        for entry in legend
    )
    return f'<ul id="dapo-legend">{rows}</ul>'


def build_page(inspector: Inspector) -> gr.Blocks:
    """The page: an image, defect names, and the score, anomaly map, type overlay and legend they give."""
    names = ", ".join(inspector.predictor.defect_types)
    hint = (
        "Defect names, comma-separated (e.g. scratch, dent, rust)."
        if inspector.accepts_any_names
        else f"This export scores: {names}."
    )

    def inspect(image: Image.Image | None, typed: str) -> tuple[str, Image.Image, Image.Image, str]:
        if image is None:
            raise gr.Error("Drop an image first.")
        try:
            inspector.set_defect_types([name.strip() for name in typed.split(",") if name.strip()])
        except (knowledge.KnowledgeBaseError, ValueError) as error:
            raise gr.Error(str(error)) from error
        result = inspector.inspect(image)
        verdict = "anomalous" if result.anomalous else "normal"
        return (
            f"{result.score:.3f} ({verdict})",
            result.anomaly_map,
            result.type_overlay,
            legend_html(result.legend, result.type_shares),
        )

    with gr.Blocks(title="Dapo inspection", analytics_enabled=False) as page:
        gr.Markdown(f"## Dapo inspection\nModel: `{inspector.source}`")
        with gr.Row():
            with gr.Column():
                image = gr.Image(type="pil", label="Image", elem_id="dapo-image")
                typed = gr.Textbox(label="Defect types", info=hint, value=names, elem_id="dapo-names")
                button = gr.Button("Inspect", variant="primary", elem_id="dapo-inspect")
            with gr.Column():
                score = gr.Textbox(label="Anomaly score (0-1, threshold 0.5)", elem_id="dapo-score")
                anomaly_map = gr.Image(label="Anomaly map", elem_id="dapo-map")
                overlay = gr.Image(label="Defect types", elem_id="dapo-overlay")
                legend = gr.HTML(elem_id="dapo-legend-box")
        button.click(inspect, inputs=[image, typed], outputs=[score, anomaly_map, overlay, legend])
    return page


def main(argv: Sequence[str] | None = None) -> None:
    """``dapo-app --weights learned.ckpt`` (or ``--export model.xml``): serve the inspection page."""
    parser = argparse.ArgumentParser(prog="dapo-app", description=__doc__.splitlines()[0])
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument("--weights", help="learned weights: the .ckpt written by 'anomalib train --model Dapo'")
    model.add_argument("--export", help="an export of 'anomalib export' (model.pt, model.onnx or model.xml)")
    parser.add_argument("--pretrained", help="CLIP weights (tag or local file) for --weights, e.g. offline")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (torch), CPU or GPU (OpenVINO)")
    parser.add_argument("--port", type=int, default=7860, help="port on 127.0.0.1")
    args = parser.parse_args(argv)
    inspector = load_inspector(args.weights or args.export, pretrained=args.pretrained, device=args.device)
    build_page(inspector).launch(server_name=HOST, server_port=args.port)
