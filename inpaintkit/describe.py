"""What a model is made of: the list of methods, a layer-by-layer table with output shapes and
parameter counts (torchinfo) and a drawing of the architecture (torchview, rendered by Graphviz),
as ``inpaintkit models [NAME] [--summary] [--diagram FILE]`` prints and draws them."""

from __future__ import annotations

from pathlib import Path

from inpaintkit.errors import InpaintError

DIAGRAM_FORMATS = (".svg", ".png", ".pdf", ".dot")


def listing() -> list[str]:
    """One line per registered method and bundled model: name, parameters (or classical), description."""
    from inpaintkit.loading import BUNDLED, bundled_weights
    from inpaintkit.models import list_models

    infos = list_models()
    width = max(len(i.name) for i in infos)
    lines = []
    for info in infos:
        params = f"{info.parameters:>12,}" if info.learned else f"{'classical':>12}"
        lines.append(f"{info.name:<{width}}  {params}  {info.description}")
    for name, description in BUNDLED.items():
        if bundled_weights(name).is_file():
            lines.append(f"{name:<{width}}  {'bundled':>12}  {description}")
    return lines


def _network(name: str, size: int):
    """The torch network behind ``name`` and an example input: a photo of ``size`` px with a centred hole."""
    import torch
    from torch import nn

    from inpaintkit.loading import load_model

    if not 16 <= size <= 2048:
        raise InpaintError(f"--size must be 16 to 2048 px, got {size}")
    model = load_model(name, untrained=True)
    if not isinstance(model, nn.Module) or not any(True for _ in model.parameters()):
        raise InpaintError(f"{name} is a classical method: it has no layers to show")
    image = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    mask = torch.zeros(1, 1, size, size)
    mask[..., size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = 1
    return model.eval(), [image * (1 - mask), mask]


def summary(name: str, size: int = 256, depth: int = 3) -> str:
    """The layer table of model ``name`` run on a ``size`` px photo: output shapes, parameters, totals."""
    import torch
    from torchinfo import summary as table

    model, inputs = _network(name, size)
    with torch.no_grad():
        stats = table(model, input_data=inputs, depth=depth, col_names=("output_size", "num_params"), verbose=0)
    return str(stats)


def diagram(name: str, out: Path, size: int = 128, depth: int = 2) -> Path:
    """Draw model ``name``'s graph (modules to ``depth``, tensor shapes on the edges) into ``out``:
    .svg, .png or .pdf through Graphviz's ``dot`` program, or the Graphviz source itself (.dot)."""
    from inpaintkit.io import write_bytes

    if out.suffix.lower() not in DIAGRAM_FORMATS:
        raise InpaintError(f"--diagram {out.name}: write .svg, .png, .pdf or .dot")
    import graphviz
    from torchview import draw_graph

    from inpaintkit.models.textured import TexturedGenerator

    model, inputs = _network(name, size)
    title = name
    if isinstance(model, TexturedGenerator):  # its PatchMatch texture runs outside the graph, in a thread
        model, title = model.network, f"{name}: the network (PatchMatch's texture is added after it)"
    graph = draw_graph(model, input_data=inputs, depth=depth, expand_nested=True, graph_name=title).visual_graph
    if out.suffix.lower() == ".dot":
        return write_bytes(out, graph.source.encode())
    try:
        data = graph.pipe(format=out.suffix.lower().lstrip("."))
    except graphviz.ExecutableNotFound:
        raise InpaintError(
            "drawing needs Graphviz's dot program (apt install graphviz, brew install graphviz); "
            f"--diagram {out.with_suffix('.dot').name} writes the graph without it"
        ) from None
    return write_bytes(out, data)
