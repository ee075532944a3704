"""The checkout's root: the package is installed in editable mode from ROOT/harness."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if not (ROOT / "Cargo.toml").is_file():
    raise ImportError(
        f"lbrecon_harness is not in an lbrecon checkout ({ROOT} has no Cargo.toml): "
        "install it in editable mode, `pip install -e ./harness` from the checkout's root"
    )
