from PIL import Image

from .conftest import run_cli


def test_demo_writes_grid_and_table(tmp_path):
    result = run_cli("demo", "--out", tmp_path, "--size", "64", "--methods", "telea,mean-fill")
    assert result.returncode == 0, result.stderr
    assert "| telea |" in result.stdout and "| mean-fill |" in result.stdout
    grid = Image.open(tmp_path / "grid.png")
    assert grid.size[0] > grid.size[1] / 4  # 16 rows of masked input, 2 methods, original
    assert (tmp_path / "results.md").read_text().count("|") > 10
    assert len(list((tmp_path / "results" / "telea").glob("*.png"))) == 16
