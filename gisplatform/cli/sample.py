"""``gisplatform sample``: generate synthetic Lạng Sơn data (deterministic)."""
from __future__ import annotations

from pathlib import Path

import click

from gisplatform.cli.render import console, progress_bars


@click.group()
def sample() -> None:
    """Synthetic but realistic Lạng Sơn data: parcels, licences, water, communes, with injected defects."""


@sample.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("sample"),
              show_default=True, help="Folder to write into (created if missing).")
@click.option("--parcels", type=click.IntRange(min=1), default=5000, show_default=True, help="Number of parcels.")
@click.option("--communes", default="06187,06385,06040", show_default=True,
              help="Post-2025 commune codes whose parcels to generate (comma-separated).")
@click.option("--seed", type=int, default=20251127, show_default=True, help="Random seed (same seed, same data).")
@click.option("--defect-rate", type=click.FloatRange(0, 1), default=0.01, show_default=True,
              help="Probability per row of each applicable defect class (0 = clean data).")
@click.option("--single-file", type=click.Choice(["gpkg", "shp"]), help="All parcels in one file (benchmarks).")
@click.option("--change-fraction", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Same data as with 0, but this fraction of parcels changed (incremental-load benchmarks).")
@click.option("--parcels-only", is_flag=True, help="Skip admin units, mining and water layers.")
@click.option("--crs-defect-files", is_flag=True, help="Also write the CRS-trap shapefiles (tests).")
def generate(out_dir: Path, parcels: int, communes: str, seed: int, defect_rate: float, single_file: str | None,
             change_fraction: float, parcels_only: bool, crs_defect_files: bool) -> None:
    """Write a sample data set and its manifest (every injected defect, by file and row)."""
    from gisplatform.sample import SampleConfig, generate_sample

    config = SampleConfig(seed=seed, communes=tuple(c.strip() for c in communes.split(",") if c.strip()),
                          parcels=parcels, defect_rate=defect_rate, single_file=single_file,
                          change_fraction=change_fraction, with_other_layers=not parcels_only,
                          crs_defect_files=crs_defect_files)
    with progress_bars() as progress:
        manifest = generate_sample(out_dir, config, progress=progress)
    counts = manifest.get("counts", {})
    console.print(f"[green]✓[/] sample written to {out_dir}: "
                  + ", ".join(f"{k} {v:,}" for k, v in counts.items() if isinstance(v, int)))
    console.print(f"  {len(manifest.get('defects', []))} injected defects listed in {out_dir / 'manifest.json'}")
