"""Configuration: the run-wide settings of the pipeline and each work's hyper-parameters.

Two kinds of file live in ``config/``:

* ``config/config.yaml`` -- the run: ``profile`` (smoke | default | paper), ``data``
  (embedded | real), ``device`` and ``seeds``. It is checked against ``config/schema.yaml``
  by :func:`validate_run_config`; a bad value is refused with a message naming the key.
* ``config/<key>.yaml`` -- one work's hyper-parameters, one section per profile::

      common:   {hidden: 128}            # optional, merged under every profile
      smoke:    {epochs: 1, n_train: 64}
      default:  {epochs: 10, n_train: 1500}
      paper:    {epochs: 100, n_train: null}
      outputs:                            # what the notebook writes, declared for Snakemake
        figures: {accuracy: "Caption of figures/<key>/accuracy.png"}
        tables:  {accuracy: "Caption of results/<key>/accuracy.csv"}
        models:  {snn: "Caption of results/<key>/snn.nir (a trained network in NIR, snnlib.export)"}
      claims:                             # the paper's claims and their tests (snnlib.claims)
        - {id: ..., text: ..., test: superiority, a: ..., b: ..., margin: ...}
      display:                            # each model's look in every figure (snnlib.plotting.work_style)
        lif-wotap: {label: "LIF (woTAP)", color: snn, linestyle: "--", marker: s, hatch: "//"}
        "SRC k={}": {label: "SRC, k = {}", shades: [2, 40]}   # a family of models differing in a number

  After merging ``common``, the three profiles must define the same keys, each with the
  same type in every profile (``null`` stands for "not used in this profile"), so that a
  notebook written against one profile runs on the others. :func:`load_work_config`
  returns one profile's merged section.

Notebooks find the project from any working directory with :func:`project_root`. Each run
writes under its own folder (:func:`run_subdir`): the default profile on embedded data at the
top (``results/``, ``figures/``), any other under ``runs/<profile>-<data>/``; the Snakefile
passes it to the notebooks as ``$SNNLIB_RUN_DIR``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PROFILES = ("smoke", "default", "paper")
WORK_SECTIONS = {"common", *PROFILES, "outputs", "description", "claims", "display"}
DISPLAY_FIELDS = {"label", "color", "linestyle", "marker", "hatch", "shades"}


class ConfigError(ValueError):
    """A configuration file or value is invalid; the message names the key and the fix."""


def project_root(start: str | os.PathLike | None = None) -> Path:
    """The project's top folder: the first parent of ``start`` (default: the working
    directory) holding both a ``Snakefile`` and ``snnlib/``."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "Snakefile").is_file() and (folder / "snnlib").is_dir():
            return folder
    raise ConfigError(
        f"no snn-compendium project above {here}: run from inside the repository "
        "(the folder with the Snakefile) or pass its path explicitly"
    )


def _read_yaml(path: Path) -> Any:
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}") from err


def _key_path(error) -> str:
    """'seeds[1]'-style name of where a jsonschema error occurred."""
    name = ""
    for part in error.absolute_path:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or "<top level>"


def validate_run_config(config: dict, schema_path: str | os.PathLike | None = None) -> dict:
    """Check the run configuration against ``config/schema.yaml``.

    Seeds given on the command line (``--config seeds=[0,1]``) reach Snakemake as strings; they
    are turned into integers in place first, and a negative one is refused by name. Returns the
    configuration; raises :class:`ConfigError` naming the first offending key, its value and
    what is allowed.
    """
    import jsonschema

    if isinstance(config.get("seeds"), list):
        config["seeds"] = [_seed(value) for value in config["seeds"]]

    schema = _read_yaml(Path(schema_path) if schema_path else project_root() / "config" / "schema.yaml")
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        key = _key_path(err)
        hint = err.schema.get("description", "")
        raise ConfigError(
            f"config key '{key}': {err.message}"
            + (f" ({hint})" if hint else "")
            + "; fix it in config/config.yaml or in --config"
        )
    return config


def _seed(value: Any) -> Any:
    """A seed as an int (from an int or a string of digits); anything else is left to the schema."""
    text = value.strip() if isinstance(value, str) else value
    if isinstance(text, str) and text.lstrip("-").isdigit():
        text = int(text)
    if isinstance(text, int) and not isinstance(text, bool) and text < 0:
        raise ConfigError(f"config key 'seeds': seed {text} is negative; seeds are integers >= 0, e.g. seeds=[0,1,2]")
    return text


def _same_type(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return True
    numbers = (int, float)
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool)
    if isinstance(a, numbers) and isinstance(b, numbers):
        return True
    return type(a) is type(b)


def _check_work(path: Path, raw: Any) -> dict[str, dict]:
    """Validate a work's YAML and return the merged section of every profile."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping with sections {list(PROFILES)}")
    unknown = set(raw) - WORK_SECTIONS
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {sorted(unknown)}; allowed: {sorted(WORK_SECTIONS)}")
    _check_display(path, raw.get("display"))
    common = raw.get("common") or {}
    merged = {}
    for profile in PROFILES:
        section = raw.get(profile)
        if not isinstance(section, dict):
            raise ConfigError(f"{path}: section '{profile}' is missing or not a mapping")
        for name, value in (("common", common), (profile, section)):
            if not isinstance(value, dict):
                raise ConfigError(f"{path}: section '{name}' must be a mapping")
        merged[profile] = {**common, **section}
    reference = merged["default"]
    for profile in PROFILES:
        missing = set(reference) ^ set(merged[profile])
        if missing:
            raise ConfigError(
                f"{path}: key(s) {sorted(missing)} are not defined in every profile; "
                "define them in each of smoke/default/paper (null where unused) or under common"
            )
        for name, value in merged[profile].items():
            if not _same_type(value, reference[name]):
                raise ConfigError(
                    f"{path}: key '{profile}.{name}' is {type(value).__name__} "
                    f"but '{type(reference[name]).__name__}' in the default profile"
                )
    return merged


def _check_display(path: Path, display: Any) -> None:
    """``display:`` maps each model's code name to its label and optional colour, line style,
    marker, hatch and (for a ``{}`` name) shades; anything else is refused by name."""
    if display is None:
        return
    if not isinstance(display, dict) or not display:
        raise ConfigError(f"{path}: 'display' must map each model's code name to {{label: ..., ...}}")
    for name, entry in display.items():
        where = f"{path}: display.{name}"
        if not isinstance(entry, dict) or not isinstance(entry.get("label"), str) or not entry["label"].strip():
            raise ConfigError(f"{where} needs a label (the name shown in figures), e.g. {{label: \"LIF (woTAP)\"}}")
        unknown = set(entry) - DISPLAY_FIELDS
        if unknown:
            raise ConfigError(f"{where}: unknown field(s) {sorted(unknown)}; allowed: {sorted(DISPLAY_FIELDS)}")
        for field_name in ("color", "linestyle", "marker", "hatch"):
            if field_name in entry and not isinstance(entry[field_name], str):
                raise ConfigError(f"{where}.{field_name} must be a string")
        shades = entry.get("shades")
        if shades is not None and not (
            "{}" in str(name) and isinstance(shades, list) and len(shades) == 2
            and all(isinstance(v, (int, float)) and v > 0 for v in shades) and shades[0] < shades[1]
        ):
            raise ConfigError(f"{where}.shades must be [low, high] with 0 < low < high, on a name with {{}} in it")


@dataclass(frozen=True)
class WorkOutputs:
    """What a work's notebook writes: figure and table names with their captions."""

    figures: dict[str, str] = field(default_factory=dict)
    tables: dict[str, str] = field(default_factory=dict)
    models: dict[str, str] = field(default_factory=dict)  # trained networks written as results/<key>/<name>.nir


def work_config_path(key: str, root: str | os.PathLike | None = None) -> Path:
    return Path(root or project_root()) / "config" / f"{key}.yaml"


def load_work_config(key: str, profile: str, root: str | os.PathLike | None = None) -> dict:
    """Hyper-parameters of work ``key`` for ``profile`` (``common`` merged in)."""
    if profile not in PROFILES:
        raise ConfigError(f"profile '{profile}' is not one of {list(PROFILES)}")
    path = work_config_path(key, root)
    return dict(_check_work(path, _read_yaml(path))[profile])


def load_work_outputs(key: str, root: str | os.PathLike | None = None) -> WorkOutputs:
    """The figures and tables that work ``key`` declares under ``outputs``."""
    path = work_config_path(key, root)
    raw = _read_yaml(path)
    _check_work(path, raw)
    outputs = raw.get("outputs") or {}
    result = {}
    for kind in ("figures", "tables", "models"):
        entries = outputs.get(kind) or {}
        if not isinstance(entries, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in entries.items()
        ):
            raise ConfigError(f"{path}: outputs.{kind} must map a file name (no suffix) to its caption")
        result[kind] = entries
    return WorkOutputs(**result)


def load_work_display(key: str, root: str | os.PathLike | None = None) -> dict[str, dict]:
    """The ``display:`` section of work ``key`` (model code name -> label, colour, ...), checked."""
    path = work_config_path(key, root)
    raw = _read_yaml(path)
    _check_work(path, raw)
    if not raw.get("display"):
        raise ConfigError(f"{path}: no 'display' section; add one naming each model's label")
    return raw["display"]


def work_claims(key: str, root: str | os.PathLike | None = None) -> tuple[Path, list]:
    """(path, the raw ``claims:`` list) of work ``key``; snnlib.claims checks each entry."""
    path = work_config_path(key, root)
    raw = _read_yaml(path)
    _check_work(path, raw)
    entries = raw.get("claims") or []
    if not isinstance(entries, list):
        raise ConfigError(f"{path}: 'claims' must be a list of claims (each a mapping with an id)")
    return path, entries


def run_subdir(profile: str, data: str) -> str:
    """Where a run's results and figures go, relative to the project: ``"."`` for the default
    profile on embedded data (the run the README reports), ``runs/<profile>-<data>`` for any
    other, so that a smoke or paper run never overwrites the default one."""
    if profile not in PROFILES or data not in ("embedded", "real"):
        raise ConfigError(f"no run directory for profile {profile!r} and data {data!r}")
    return "." if (profile, data) == ("default", "embedded") else f"runs/{profile}-{data}"


def _run_root(root: str | os.PathLike | None) -> Path:
    """The project root joined with ``$SNNLIB_RUN_DIR`` (set by the Snakefile from :func:`run_subdir`)."""
    return Path(root or project_root()) / os.environ.get("SNNLIB_RUN_DIR", ".")


def figures_dir(key: str, root: str | os.PathLike | None = None) -> Path:
    """Where work ``key`` writes its figures: ``<run>/figures/<key>/`` (see :func:`run_subdir`)."""
    return _run_root(root) / "figures" / key


def results_dir(key: str, root: str | os.PathLike | None = None) -> Path:
    """Where work ``key`` writes its tables, claims and executed notebook: ``<run>/results/<key>/``."""
    return _run_root(root) / "results" / key
