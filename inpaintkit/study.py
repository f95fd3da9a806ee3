"""Studies: a question about recipes answered by training variants and testing them, in one command.

A study file (``configs/studies/*.yaml``) names recipes (in ``configs/``, or paths), what to vary in
each (``vary``: ``--grid`` specs, or named variants of several overrides), the scale every run uses
(``set``) and the test (photos, mask bins, image count, size, metrics). ``inpaintkit study FILE
--out DIR`` trains each variant once (a finished run with the same recipe is reused, so an interrupted
study continues), tests every model on the same images and masks in one batched bench, and writes a
page: the reference's claim, the hardware and time, a test table per recipe and varied key with the
best value named, the validation curves of each group and every number as JSON.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from inpaintkit.compare import compare_runs, grid_overrides
from inpaintkit.errors import InpaintError
from inpaintkit.evaluation import EXTRA_COLUMNS, METRIC_COLUMNS, FeatureMetrics, markdown_table, run_bench
from inpaintkit.io import write_bytes
from inpaintkit.reports import machine

# metric -> (title, format, whether higher is better); every bench metric, plus the whole-image errors
METRICS = {key: (title, fmt, better == "higher") for key, title, fmt, better in METRIC_COLUMNS + EXTRA_COLUMNS}
LEARNED = ("lpips_vgg", "lpips_alex", "fid")
STUDY_FILES = ("README.md", "results.json")
DONE = "study.json"  # written into a run's folder when it has trained to its end
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")


@dataclass
class Study:
    title: str
    reference: str
    recipes: list[str]
    vary: list  # "key=a,b" or {name: {label: [overrides]}}
    test: dict
    set: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> Study:
        if not path.is_file():
            raise InpaintError(f"{path}: study file not found")
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            raise InpaintError(f"{path}: not a text file (a study is YAML)") from None
        except yaml.YAMLError as exc:
            raise InpaintError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
        if not isinstance(raw, dict):
            raise InpaintError(f"{path}: expected a mapping with title, reference, recipes, vary and test")
        known = set(cls.__dataclass_fields__)
        if unknown := sorted(map(str, set(raw) - known)):
            raise InpaintError(f"{path}: unknown key {unknown[0]!r}; a study has {', '.join(sorted(known))}")
        if missing := sorted(k for k in ("title", "reference", "recipes", "vary", "test") if k not in raw):
            raise InpaintError(f"{path}: missing key {missing[0]!r}")
        study = cls(**raw)
        study.check(path)
        return study

    def check(self, path: Path) -> None:
        for key in ("recipes", "set"):
            value = getattr(self, key)
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise InpaintError(f"{path}: {key} must be a list of strings")
        if not self.recipes or not isinstance(self.vary, list) or not self.vary:
            raise InpaintError(f"{path}: name at least one recipe and one thing to vary")
        seen = set()
        for recipe in self.recipes:
            for item in self.vary:
                try:
                    key, variants = _variants(item)
                except InpaintError as exc:
                    raise InpaintError(f"{path}: {exc}") from None
                if (Path(recipe).stem, key) in seen:
                    raise InpaintError(
                        f"{path}: {Path(recipe).stem} varies {key!r} twice; give each group its own name"
                    )
                seen.add((Path(recipe).stem, key))
        if not isinstance(self.title, str) or not isinstance(self.reference, str):
            raise InpaintError(f"{path}: title and reference must be text")
        test = self.test if isinstance(self.test, dict) else {}
        if sorted(map(str, test)) != ["data", "masks", "metrics", "n", "size"]:
            raise InpaintError(f"{path}: test must give exactly data, masks, metrics, n and size")
        masks = test["masks"] if isinstance(test["masks"], list) else [test["masks"]]
        if not masks or not all(isinstance(m, str) for m in masks) or not isinstance(test["data"], str):
            raise InpaintError(f"{path}: test data must be a folder and masks a spec or a list of specs")
        metrics = test["metrics"]
        if not isinstance(metrics, list) or not metrics or not all(isinstance(m, str) for m in metrics):
            raise InpaintError(f"{path}: test metrics must be a list; choose from {', '.join(METRICS)}")
        if unknown := [m for m in test["metrics"] if m not in METRICS]:
            raise InpaintError(f"{path}: unknown metric {unknown[0]!r}; choose from {', '.join(METRICS)}")
        for key in ("n", "size"):
            if isinstance(test[key], bool) or not isinstance(test[key], int) or test[key] < 1:
                raise InpaintError(f"{path}: test {key} must be a whole number of at least 1")

    def masks(self) -> str:
        """The test's mask bins as one protocol: a list of specs is one bin each."""
        masks = self.test["masks"]
        return ";".join(masks) if isinstance(masks, list) else str(masks)


@dataclass
class Group:
    """The variants of one recipe along one varied key: a label and the overrides of each."""

    recipe: str
    key: str
    variants: list[tuple[str, list[str]]]
    runs: list = field(default_factory=list)


def _variants(item) -> tuple[str, list[tuple[str, list[str]]]]:
    """A ``vary`` entry: ``"key=a,b"`` (as ``train --grid``), or ``{name: {label: [overrides]}}`` for
    variants that change several keys or take values with commas (mask specs, lists). Names and labels
    become folder names: letters, digits and ``_.+-``."""
    key, variants = None, None
    if isinstance(item, str):
        key, variants = item.split("=", 1)[0].strip(), [(s.split("-", 1)[1], o) for s, o in grid_overrides(item)]
    elif isinstance(item, dict) and len(item) == 1:
        ((name, labelled),) = item.items()
        if (
            isinstance(labelled, dict)
            and len(labelled) >= 2
            and all(isinstance(o, list) and all(isinstance(x, str) for x in o) for o in labelled.values())
        ):
            if misread := [word for word in (name, *labelled) if word is None or isinstance(word, bool)]:
                raise InpaintError(
                    f"vary entry {item!r}: {misread[0]!r} is not text; quote it (YAML reads unquoted on, off, yes, "
                    "no and null as true, false and None)"
                )
            key, variants = str(name), [(str(label), overrides) for label, overrides in labelled.items()]
    if variants is None:
        raise InpaintError(f"vary entry {item!r}: expected key=a,b,... or {{name: {{label: [key=value, ...], ...}}}}")
    for word in [key] + [label for label, _ in variants]:
        if not _NAME.fullmatch(word):
            raise InpaintError(f"vary entry {item!r}: {word!r} must be letters, digits and _.+- (it names folders)")
    if len({label for label, _ in variants}) < len(variants):
        raise InpaintError(f"vary entry {item!r}: a value is given twice")
    return key, variants


def _recipe(name: str, configs: Path) -> Path:
    path = Path(name) if name.endswith((".yaml", ".yml")) else configs / f"{name}.yaml"
    if not path.is_file():
        raise InpaintError(f"recipe {name!r}: {path} not found")
    return path


def _identity(config) -> str:
    """A recipe's values apart from its name."""
    return json.dumps(config.to_dict() | {"name": ""}, sort_keys=True, default=str)


def _train_once(variant, command) -> tuple[Path, float]:
    """The run of ``variant`` in its folder and the seconds it took: a finished one as it is, an
    interrupted one resumed from its last checkpoint, else a new one. A folder holding another
    recipe's run is refused, never written into or beside."""
    from inpaintkit.training import train

    run_dir, resume = Path(variant.out) / variant.name, None
    if run_dir.exists():
        try:
            saved = yaml.safe_load((run_dir / "config.yaml").read_text())
        except (OSError, yaml.YAMLError):
            saved = None
        if saved != yaml.safe_load(yaml.safe_dump(variant.to_dict())):
            raise InpaintError(f"{run_dir} holds another recipe's run; move it, or give the study another --runs")
        try:
            return run_dir, json.loads((run_dir / DONE).read_text())["seconds"]
        except (OSError, ValueError, KeyError, TypeError):
            pass
        last = run_dir / "checkpoints" / "last.ckpt"
        if not last.is_file():
            raise InpaintError(f"{run_dir}: an unfinished run without a checkpoint; remove it to train it again")
        resume = str(last)
    started = time.perf_counter()
    run_dir = train(variant, resume=resume, command=command)
    seconds = time.perf_counter() - started
    write_bytes(run_dir / DONE, json.dumps({"seconds": seconds}) + "\n")
    return run_dir, seconds


def run_study(
    study: Study,
    out: Path,
    runs: Path,
    overrides: list[str] = (),
    data: Path | None = None,
    n: int | None = None,
    command: list[str] | None = None,
    configs: Path = Path("configs"),
) -> str:
    """Train every variant (checked before the first trains), test them together and write the page
    (``STUDY_FILES`` and a folder of curves per group) in ``out``. Returns the page."""
    from inpaintkit.training import load_config

    metrics = study.test["metrics"]
    features = FeatureMetrics(learned=any(m in LEARNED for m in metrics))
    if any(m in LEARNED for m in metrics) and not features.lpips:
        raise InpaintError(
            f"{', '.join(m for m in metrics if m in LEARNED)} need their weights: run inpaintkit weights prepare"
        )
    test_data, count = data or Path(study.test["data"]), n or study.test["n"]
    if "fid" in metrics and count < 2:
        raise InpaintError("FID needs at least 2 test images")
    groups, unique = [], {}
    for name in study.recipes:
        recipe = load_config(_recipe(name, configs)).with_overrides([*study.set, *overrides])
        base = dataclasses.replace(recipe, out=str(runs))  # the study's runs folder, whatever --set out says
        for item in study.vary:
            group = Group(Path(name).stem, *_variants(item))
            for label, extra in group.variants:
                variant = base.with_overrides([*extra, f"name={group.recipe}-{group.key}-{label}"])
                variant.validate()
                # the recipe's own value appears in every grid (loss=mse with adam, optimizer=adam with
                # mse): one run serves them all
                group.runs.append(unique.setdefault(_identity(variant), variant))
            groups.append(group)
    run_dirs, seconds = {}, {}
    for key, variant in unique.items():
        run_dirs[key], seconds[key] = _train_once(variant, command)
    train_seconds = sum(seconds.values())
    for group in groups:
        group.runs = [run_dirs[_identity(v)] for v in group.runs]
    models = list(dict.fromkeys(str(d / "model.safetensors") for d in run_dirs.values()))
    started = time.perf_counter()
    result, _ = run_bench(models, test_data, study.masks(), n=count, size=study.test["size"], features=features)
    test_seconds = time.perf_counter() - started
    out.mkdir(parents=True, exist_ok=True)
    bins = {r["bin"] for r in result.rows}
    timing = (
        f"Training: {len(run_dirs)} runs in {train_seconds / 60:.1f} min; test: {len(result.images)} images x "
        f"{len(bins)} mask {'bin' if len(bins) == 1 else 'bins'} x {len(models)} models in {test_seconds / 60:.1f} min."
    )
    page = _page(study, groups, result, [*study.set, *overrides], test_data, command, timing, out)
    write_bytes(out / "README.md", page)
    numbers = {
        "runs": [str(d) for d in run_dirs.values()], "train_seconds": train_seconds, "test_seconds": test_seconds,
        "test": result.rows,
    }  # fmt: skip
    write_bytes(out / "results.json", json.dumps(numbers, indent=1) + "\n")
    return page


def _best(means: dict[str, dict[str, float]], metric: str) -> str:
    """The label whose mean ``metric`` is best (highest or lowest, as the metric goes)."""
    return (max if METRICS[metric][2] else min)(means, key=lambda label: means[label][metric])


def _page(
    study: Study, groups: list[Group], result, scale: list[str], data: Path, command, timing: str, out: Path
) -> str:
    """The study's page: what it asks, how it ran, a table and the curves of each group."""
    lookup = {(r["method"], r["bin"]): r for r in result.rows}
    bins = list(dict.fromkeys(r["bin"] for r in result.rows))
    metrics = study.test["metrics"]
    cells = [(b, m) for b in bins for m in metrics]
    parts = [
        f"# {study.title}",
        "",
        f"Reference: {study.reference.strip()}",
        "",
        f"Command: `{' '.join(['inpaintkit', *map(str, (command or ['', 'study'])[1:])])}`",
        "",
        f"Hardware: {machine()}. {timing}",
        "",
        f"Every run: the recipe with {', '.join(f'`{s}`' for s in scale) or 'nothing changed'}. Test: the first "
        f"{len(result.images)} photos of `{data}` at {result.size} px, masks {', '.join(f'`{b}`' for b in bins)} "
        "(seeded: the same for every model); metrics on the composited result over the whole image.",
    ]
    for group in groups:
        slug = f"{group.recipe}-{group.key}"
        compare_runs(group.runs, out / slug, labels=[label for label, _ in group.variants])
        header = [group.key] + [METRICS[m][0] + (f" {b}" if len(bins) > 1 else "") for b, m in cells]
        rows, means = [], {}
        for (value, _), run in zip(group.variants, group.runs, strict=True):
            model = str(run / "model.safetensors")
            rows.append([value] + [METRICS[m][1].format(lookup[(model, b)][m]) for b, m in cells])
            means[value] = {m: float(np.mean([lookup[(model, b)][m] for b in bins])) for m in metrics}
        best = [f"{METRICS[m][0]} **{_best(means, m)}**" for m in metrics]
        parts += [
            "",
            f"## {group.recipe}: {group.key}",
            "",
            markdown_table(header, rows),
            "",
            f"Best on the test{' (mean over the bins)' if len(bins) > 1 else ''}: {'; '.join(best)}.",
            "",
            f"![validation curves of {slug}]({slug}/curves.png)",
        ]
    return "\n".join(parts) + "\n"
