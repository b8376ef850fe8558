"""``rewardlab``: a table from command to stage recipe and the config classes it reads.

Every flag is generated from a config dataclass field, and its help is that field's docstring
(:mod:`rewardlab.config`), so help text lives in one place. The CLI holds no stage logic: it
parses, builds the configs, calls the recipe and prints what the recipe returns. Errors print one
line and exit non-zero; set ``REWARDLAB_DEBUG=1`` for the traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import difflib
import importlib
import logging
import os
import pickle
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from rewardlab.config import (
    CommonConfig,
    ConfigError,
    DenoiseConfig,
    ExperimentConfig,
    ExportConfig,
    InputConfig,
    InspectConfig,
    LoadConfig,
    ModelConfig,
    ModelPathConfig,
    NoiseConfig,
    OutputConfig,
    ReportConfig,
    RunConfig,
    RunDirConfig,
    ScoreConfig,
    ServeConfig,
    SplitConfig,
    StrengthConfig,
    SyntheticConfig,
    TrainConfig,
    UncertaintyConfig,
    field_docs,
    field_types,
    flag,
)
from rewardlab.stages.command import CommandResult

log = logging.getLogger("rewardlab")


@dataclass(frozen=True)
class Section:
    """One config class a command reads: passed to the recipe as keyword ``name``."""

    name: str
    cls: type
    title: str | None = None
    """argparse group title; ``None`` puts the flags with the command's own."""
    only: tuple[str, ...] | None = None
    """The fields this command uses (``group.field`` for a nested group); ``None``: all."""
    defaults: Mapping[str, Any] = field(default_factory=dict)
    """Defaults that differ for this command (e.g. ``members`` 10 where strength is measured)."""


@dataclass(frozen=True)
class Writes:
    """Where a command writes: the config field holding the path, and what the path is."""

    section: str
    attr: str
    kind: Literal["folder", "run folder", "file"] = "folder"
    """``folder``: made if missing and locked for the whole command (one writer per folder);
    ``run folder``: the same, but never made (a missing one is the recipe's error to report);
    ``file``: written atomically, so only its folder is checked for write access."""


@dataclass(frozen=True)
class Command:
    summary: str
    recipe: str
    """``module:function`` of the stage recipe, imported only when the command runs."""
    sections: tuple[Section, ...]
    writes: Writes | None = None
    """Checked for write access before any work, and locked (:mod:`rewardlab.locks`)."""


DATA = Section("data", InputConfig)
LOAD = Section("load", LoadConfig, "loading")
SPLIT = Section("split", SplitConfig, "validation")
NOISE = Section("noise", NoiseConfig, "known noise")
STRENGTH = Section("strength", StrengthConfig, "strength")
OUT = Section("output", OutputConfig)
TO_FOLDER = Writes("output", "out")
TO_FILE = Writes("output", "out", "file")
COMMON = Section("common", CommonConfig)
ENSEMBLE = Section("model", ModelConfig, "model", defaults={"members": 10})
"""Commands that measure strength: --members sizes that ensemble."""

COMMANDS: dict[str, Command] = {
    "inspect": Command(
        "Count pairs, formats, token lengths, suspicious and malformed records.",
        "rewardlab.stages.inspect:inspect_command",
        (DATA, LOAD, Section("inspect", InspectConfig), COMMON)),
    "train": Command(
        "Train a reward model (optionally denoised by a strength file) and evaluate it.",
        "rewardlab.stages.train:train_command",
        (DATA, LOAD, SPLIT, Section("model", ModelConfig, "model"), NOISE,
         Section("denoise", DenoiseConfig, "denoising"), Section("train", TrainConfig, "report"),
         OUT, COMMON),
        TO_FOLDER),
    "evaluate": Command(
        "Evaluate a saved reward model on any preference data.",
        "rewardlab.stages.train:evaluate_command",
        (Section("model_path", ModelPathConfig), DATA, LOAD, OUT, COMMON),
        TO_FOLDER),
    "strength": Command(
        "Measure preference strength (mean and std of an ensemble's reward gaps).",
        "rewardlab.stages.strength:strength_command",
        (DATA, LOAD, ENSEMBLE, STRENGTH, NOISE, OUT, COMMON),
        TO_FOLDER),
    "groups": Command(
        "The paper's data-contribution experiment: a model per 10% strength group.",
        "rewardlab.stages.experiments:groups_command",
        (DATA, LOAD, SPLIT, ENSEMBLE, STRENGTH, NOISE,
         Section("denoise", DenoiseConfig, "denoising",
                 only=("strength_file", "allow_overlap")),
         Section("experiment", ExperimentConfig, "experiments", only=("seeds",)), OUT, COMMON),
        TO_FOLDER),
    "compare": Command(
        "The paper's methods comparison: baseline, flip, smoothing, margin, ...",
        "rewardlab.stages.experiments:compare_command",
        (DATA, LOAD, SPLIT, ENSEMBLE, STRENGTH, NOISE,
         Section("denoise", DenoiseConfig, "denoising",
                 only=("strength_file", "allow_overlap", "margin_scale")),
         Section("experiment", ExperimentConfig, "experiments"), OUT, COMMON),
        TO_FOLDER),
    "run": Command(
        "The main job: strength, groups, compare, final model and report in one folder.",
        "rewardlab.stages.run:run_command",
        (DATA, LOAD, SPLIT, ENSEMBLE, STRENGTH, NOISE,
         Section("experiment", ExperimentConfig, "experiments"), Section("run", RunConfig),
         OUT, COMMON),
        TO_FOLDER),
    "report": Command(
        "Draw the figures and write report.html from a run folder.",
        "rewardlab.stages.report:report_command",
        (Section("run_dir", RunDirConfig), Section("report", ReportConfig), COMMON),
        Writes("run_dir", "run_dir", "run folder")),
    "export": Command(
        "Write denoised training pairs with a TRL-style margin column.",
        "rewardlab.stages.export:export_command",
        (Section("run_dir", RunDirConfig),
         Section("denoise", DenoiseConfig, "denoising",
                 only=tuple(f.name for f in dataclasses.fields(DenoiseConfig)
                            if f.name not in ("strength_file", "allow_overlap"))),
         Section("export", ExportConfig, "export"), OUT, COMMON),
        TO_FILE),
    "encode": Command(
        "Fill the embedding feature cache; under a multi-process launch each process encodes a "
        "share.",
        "rewardlab.stages.encode:encode_command",
        (DATA, LOAD,
         Section("model", ModelConfig, "encoder",
                 only=("model", "max_length", "device", "encode_batch_size", "pooling",
                       "embedding.cache_dir", "embedding.encoder_precision")), COMMON)),
    "synthetic": Command(
        "Build a semi-synthetic preference set with known flipped labels.",
        "rewardlab.stages.synthetic:synthetic_command",
        (DATA, Section("load", LoadConfig, "loading", only=("map", "on_bad")),
         Section("model", ModelConfig, "encoder",
                 only=("model", "max_length", "seed", "device", "encode_batch_size",
                       "pooling", "embedding.cache_dir")),
         Section("synthetic", SyntheticConfig, "synthetic labels"), OUT, COMMON),
        TO_FILE),
    "score": Command(
        "Score responses or pairs with a saved ensemble: mean, std, members, uwo and min.",
        "rewardlab.stages.score:score_command",
        (Section("model_path", ModelPathConfig), DATA, LOAD,
         Section("uncertainty", UncertaintyConfig, "uncertainty"),
         Section("score", ScoreConfig, "scoring"), OUT, COMMON),
        TO_FILE),
    "serve": Command(
        "Serve a saved ensemble over HTTP (OpenRLHF's /get_reward, and /score) with batching.",
        "rewardlab.stages.score:serve_command",
        (Section("model_path", ModelPathConfig), Section("uncertainty", UncertaintyConfig,
                                                         "uncertainty"),
         Section("serve", ServeConfig, "server"), COMMON)),
}

DESCRIPTION = """\
Find wrong and ambiguous preference pairs, and train reward models that stay good despite them.

Start here:  rewardlab run DATA... -o OUT     (then open OUT/report.html)
"""


# --------------------------------------------------------------------------------------------
# Dataclass <-> argparse


def _escape(text: str) -> str:
    """argparse treats help as a %-format string."""
    return text.replace("%", "%%")


def _wanted(section: Section, name: str, prefix: str = "") -> bool:
    return section.only is None or f"{prefix}{name}" in section.only or any(
        o.startswith(f"{prefix}{name}.") for o in section.only)


def _argument(f: dataclasses.Field, tp: Any, default: Any, help_text: str) -> tuple[
        list[str], dict[str, Any]]:
    """argparse's ``add_argument`` names and keywords for one field."""
    meta = f.metadata
    kwargs: dict[str, Any] = {}
    if get_origin(tp) is list:
        kwargs["nargs"] = meta.get("nargs") or "+"
        tp = get_args(tp)[0]
    if tp is bool:
        kwargs["action"] = "store_true"
    elif get_origin(tp) is Literal:
        kwargs["choices"] = list(get_args(tp))  # a Literal
        kwargs["metavar"] = "{" + ",".join(get_args(tp)) + "}"
    else:
        kwargs["type"] = tp
        kwargs["metavar"] = f.name.upper()
    if meta.get("positional"):
        if meta.get("nargs") and "nargs" not in kwargs:
            kwargs["nargs"] = meta["nargs"]
        return [], {**kwargs, "help": _escape(help_text), "metavar": f.name.upper()}
    if not (default is None or default is False or default == "" or default == []):
        help_text += f" (default: {default})"
    names = [meta["short"], flag(f.name)] if "short" in meta else [flag(f.name)]
    kwargs.update(default=default, help=_escape(help_text), required=meta.get("required", False))
    return names, kwargs


def add_config(parser: argparse.ArgumentParser, section: Section,
               cls: type | None = None, prefix: str = "") -> None:
    """Add one argument per field of ``section`` (recursing into nested config groups)."""
    cls = cls or section.cls
    docs, types = field_docs(cls), field_types(cls)
    group = parser.add_argument_group(section.title) if section.title else parser
    for f in dataclasses.fields(cls):
        if not _wanted(section, f.name, prefix):
            continue
        if dataclasses.is_dataclass(types[f.name]):
            sub = dataclasses.replace(section, title=f"{f.name} backend" if section.title
                                      else None)
            add_config(parser, sub, types[f.name], prefix=f"{prefix}{f.name}.")
            continue
        default = section.defaults.get(f.name, f.default)
        if default is dataclasses.MISSING:
            default = f.default_factory()  # type: ignore[misc]
        names, kwargs = _argument(f, types[f.name], default, docs.get(f.name, ""))
        dest = f"{cls.__name__}.{f.name}"
        if names:
            group.add_argument(*names, dest=dest, **kwargs)
        else:
            group.add_argument(dest, **kwargs)


def build_config(cls: type, ns: argparse.Namespace) -> Any:
    """Instantiate ``cls`` from the parsed flags (validation happens in ``__post_init__``).

    Fields a command does not expose keep their defaults; nested groups are built the same way.
    """
    prefix = f"{cls.__name__}."
    values = {k[len(prefix):]: v for k, v in vars(ns).items() if k.startswith(prefix)}
    types = field_types(cls)
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(types[f.name]):
            values[f.name] = build_config(types[f.name], ns)
    return cls(**values)


# --------------------------------------------------------------------------------------------
# Parser and main


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The top-level parser and one sub-parser per command."""
    from rewardlab import __version__

    parser = argparse.ArgumentParser(prog="rewardlab", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"rewardlab {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    subs = {}
    for name, command in COMMANDS.items():
        # No abbreviations: --member must not silently mean --members (or a future flag).
        p = sub.add_parser(name, help=_escape(command.summary),
                           description=_escape(command.summary), allow_abbrev=False)
        for section in command.sections:
            add_config(p, section)
        subs[name] = p
    return parser, subs


def _print_result(result: CommandResult) -> None:
    for line in result.lines:
        print(line)
    if result.outputs:
        print("\nwrote:")
        width = max(len(k) for k in result.outputs)
        for name, path in result.outputs.items():
            print(f"  {name:<{width}}  {path}")


def _configure_logging(quiet: bool) -> None:
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO,
                        format="%(message)s", stream=sys.stderr)
    if quiet:
        os.environ["TQDM_DISABLE"] = "1"
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover - transformers is a dependency
        pass


def _unknown_flags(sub: argparse.ArgumentParser, extras: list[str]) -> None:
    """Refuse unknown arguments under the sub-command's usage, with a "did you mean"."""
    known = [s for a in sub._actions for s in a.option_strings]
    hints = []
    for arg in extras:
        close = difflib.get_close_matches(arg.split("=", 1)[0], known, n=1)
        hints.append(f"{arg} (did you mean {close[0]}?)" if close else arg)
    sub.error("unrecognized arguments: " + ", ".join(hints))


def _guard(name: str, writes: Writes | None,
           configs: dict[str, Any]) -> contextlib.AbstractContextManager[Any]:
    """Before any work: refuse an output that cannot be written, and hold an output folder's
    lock for the whole command (a second writer stops at once, naming this one)."""
    from rewardlab.launch import Ranks
    from rewardlab.locks import check_writable, hold_folder

    if writes is None:
        return contextlib.nullcontext()
    path = Path(getattr(configs[writes.section], writes.attr))
    if writes.kind == "folder" and path.is_file():
        configs[writes.section].folder()  # OutputConfig's error, naming the flag
    if writes.kind == "file":
        check_writable(path.parent)
        return contextlib.nullcontext()
    if writes.kind == "run folder" and not path.is_dir():
        return contextlib.nullcontext()
    if not Ranks.from_env().is_main:
        # The processes of one `accelerate launch` write one folder together: rank 0 holds the
        # lock for all of them, and a second launch into the folder still stops at once.
        path.mkdir(parents=True, exist_ok=True)
        return contextlib.nullcontext()
    return hold_folder(path, command=f"rewardlab {name}")


def _run(name: str, command: Command, ns: argparse.Namespace) -> CommandResult:
    configs = {s.name: build_config(s.cls, ns) for s in command.sections}
    module, _, function = command.recipe.partition(":")
    with _guard(name, command.writes, configs):
        return getattr(importlib.import_module(module), function)(**configs)


def _message(exc: BaseException) -> str:
    """One line for the terminal."""
    if isinstance(exc, pickle.UnpicklingError):
        # torch's own text suggests weights_only=False: advice that would run the file's code.
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        why = next((line for line in lines[1:] if "weights_only" not in line),
                   lines[0] if lines else "not plain tensors")
        return (f"refused to unpickle a weights file (rewardlab reads safetensors, and pickles "
                f"only as plain tensors): {why.rstrip('.')}. Convert it to safetensors")
    return str(exc.args[0] if isinstance(exc, KeyError) and exc.args else exc)


def _attach_values(argv: Sequence[str], sub: argparse.ArgumentParser | None) -> list[str]:
    """``--flag -3=a,...`` as ``--flag=-3=a,...``: argparse takes a value that starts with a
    dash for a flag, so ``--winner-values -3=a`` would fail where ``--winner-values=-3=a``
    works. Only a flag that takes one value, followed by something that is no flag it knows."""
    if sub is None:
        return list(argv)
    takes_value = {s for a in sub._actions for s in a.option_strings if a.nargs is None}
    known = {s for a in sub._actions for s in a.option_strings}
    out: list[str] = []
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        nxt = args[i + 1] if i + 1 < len(args) else None
        if (arg in takes_value and nxt is not None and nxt.startswith("-") and len(nxt) > 1
                and nxt.split("=", 1)[0] not in known):
            out.append(f"{arg}={nxt}")
            i += 2
            continue
        out.append(arg)
        i += 1
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser, subs = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    ns, extras = parser.parse_known_args(_attach_values(argv, subs.get(command or "")))
    if extras:
        _unknown_flags(subs[ns.command], extras)
    quiet = bool(getattr(ns, "CommonConfig.quiet", False))
    _configure_logging(quiet)
    try:
        _print_result(_run(ns.command, COMMANDS[ns.command], ns))
    except ConfigError as exc:
        print(f"rewardlab {ns.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`| head`): say nothing, and keep Python from complaining on exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except (ValueError, OSError, KeyError, RuntimeError, pickle.UnpicklingError) as exc:
        if os.environ.get("REWARDLAB_DEBUG"):
            raise
        print(f"rewardlab {ns.command}: error: {_message(exc)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
