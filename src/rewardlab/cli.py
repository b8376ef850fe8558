"""``rewardlab``: a thin command-line layer over the stages.

Flags are generated from the config dataclasses, and their help is each field's docstring, so help
text lives in one place (:mod:`rewardlab.config`). Errors print one line and exit non-zero;
set ``REWARDLAB_DEBUG=1`` for the traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import types
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from rewardlab.config import (
    ConfigError,
    DenoiseConfig,
    ExperimentConfig,
    LoadConfig,
    ModelConfig,
    SplitConfig,
    StrengthConfig,
    field_docs,
    flag,
)

log = logging.getLogger("rewardlab")

# --------------------------------------------------------------------------------------------
# Dataclass <-> argparse


def _unwrap_optional(tp: Any) -> Any:
    if get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _escape(text: str) -> str:
    """argparse treats help as a %-format string."""
    return text.replace("%", "%%")


def add_config(parser: argparse.ArgumentParser, cls: type, *, title: str,
               defaults: dict[str, Any] | None = None, skip: Sequence[str] = ()) -> None:
    """Add one flag per field of dataclass ``cls``, with its docstring as help."""
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    group = parser.add_argument_group(title)
    defaults = defaults or {}
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        tp = _unwrap_optional(hints[f.name])
        default = defaults.get(f.name, f.default)
        help_text = docs.get(f.name, "")
        kwargs: dict[str, Any] = {"dest": f"{cls.__name__}.{f.name}", "default": default}
        if tp is bool:
            kwargs["action"] = "store_true"
        elif get_origin(tp) is Literal:
            kwargs["choices"] = list(get_args(tp))
            kwargs["metavar"] = "{" + ",".join(get_args(tp)) + "}"
        else:
            kwargs["type"] = tp
            kwargs["metavar"] = f.name.upper()
        if not (default is None or default is False or default == ""):
            help_text += f" (default: {default})"
        group.add_argument(flag(f.name), help=_escape(help_text), **kwargs)


def build_config(cls: type, ns: argparse.Namespace) -> Any:
    """Instantiate ``cls`` from the parsed flags (validation happens in ``__post_init__``)."""
    prefix = f"{cls.__name__}."
    values = {k[len(prefix):]: v for k, v in vars(ns).items() if k.startswith(prefix)}
    return cls(**values)


# --------------------------------------------------------------------------------------------
# Commands


def _print_outputs(outputs: dict[str, Any]) -> None:
    print("\nwrote:")
    width = max(len(k) for k in outputs)
    for name, path in outputs.items():
        print(f"  {name:<{width}}  {path}")


def cmd_inspect(ns: argparse.Namespace) -> int:
    from rewardlab.stages.inspect import format_inspect, inspect_data

    load = build_config(LoadConfig, ns)
    result = inspect_data(ns.data, mapping=load.mapping, on_bad=load.on_bad,
                          drop_suspicious=load.drop_suspicious, model=ns.model)
    if ns.json:
        json.dump(result, sys.stdout, indent=2, default=str)
        print()
    else:
        print(format_inspect(result))
    return 0


def _prepared(ns: argparse.Namespace, *, strength: StrengthConfig | None = None) -> Any:
    from rewardlab.stages.prepare import prepare_data

    model = build_config(ModelConfig, ns)
    return prepare_data(ns.data, load=build_config(LoadConfig, ns),
                        split=build_config(SplitConfig, ns), seed=model.seed, strength=strength)


def _strength_for(train: Any, valid: Any, ns: argparse.Namespace, out: Path,
                  model: ModelConfig, strength: StrengthConfig, members: int) -> Any:
    """û of the training pairs: from ``--strength``, else measured on them now (train only)."""
    from rewardlab.stages.strength import run_strength
    from rewardlab.stages.tables import join_strength, read_table

    path = getattr(ns, "DenoiseConfig.strength", None)
    if path:
        table = read_table(path)
        leaked = set(valid["id"]) & set(table.column("id").to_pylist())
        if leaked:
            log.warning("warning: %d validation pairs are in %s: strength measured on them "
                        "lets validation labels leak into denoising", len(leaked), path)
        return join_strength(list(train["id"]), table, source=path)
    res = run_strength(train, model=dataclasses.replace(model, members=members),
                       strength=strength, out_dir=out / "strength", progress=not ns.quiet)
    return res.delta.mean(axis=0)


def cmd_strength(ns: argparse.Namespace) -> int:
    from rewardlab.data import read_preferences
    from rewardlab.stages.strength import run_strength
    from rewardlab.stages.train import inject_flips

    load, model = build_config(LoadConfig, ns), build_config(ModelConfig, ns)
    strength = build_config(StrengthConfig, ns)
    ds, report = read_preferences(ns.data, mapping=load.mapping, on_bad=load.on_bad,
                                  drop_suspicious=load.drop_suspicious)
    ds = inject_flips(ds, strength)
    res = run_strength(ds, model=model, strength=strength, out_dir=ns.out,
                       progress=not ns.quiet, extra_summary={"data": report.to_dict()})
    s = res.summary
    print(f"{s['n']} pairs, M={s['members']} ({s['scheme']}): "
          f"{s['fraction_negative']:.1%} have mean strength < 0")
    if "detection" in s:
        print(f"injected flips found with AUROC {s['detection']['auroc']:.3f}")
    _print_outputs({"strength": res.parquet, "strength (jsonl)": res.jsonl,
                    "summary": res.summary_path})
    return 0


def cmd_train(ns: argparse.Namespace) -> int:
    from rewardlab.stages.train import plan_from_config, run_train

    model, strength = build_config(ModelConfig, ns), build_config(StrengthConfig, ns)
    denoise_cfg = build_config(DenoiseConfig, ns)
    prep = _prepared(ns, strength=strength)
    plan = plan_from_config(denoise_cfg)
    u = None
    if denoise_cfg.strength:
        from rewardlab.stages.tables import join_strength, read_table

        u = join_strength(list(prep.train["id"]), read_table(denoise_cfg.strength),
                          source=denoise_cfg.strength)
    metrics = run_train(prep.train, prep.valid, model=model, plan=plan, strength_mean=u,
                        out_dir=ns.out, progress=not ns.quiet, extra={"data": prep.report})
    if "valid" in metrics:
        print(f"validation accuracy {metrics['valid']['accuracy']:.4f} "
              f"on {metrics['valid']['n']} pairs")
    _print_outputs({"model": Path(ns.out) / "model", "metrics": Path(ns.out) / "metrics.json"})
    return 0


def cmd_evaluate(ns: argparse.Namespace) -> int:
    from rewardlab.data import read_preferences
    from rewardlab.files import write_json
    from rewardlab.models import load_reward_model
    from rewardlab.stages.train import evaluate_model

    load = build_config(LoadConfig, ns)
    ds, report = read_preferences(ns.data, mapping=load.mapping, on_bad=load.on_bad,
                                  drop_suspicious=load.drop_suspicious)
    model = load_reward_model(ns.model_dir, progress=not ns.quiet)
    metrics = {"valid": evaluate_model(model, ds), "data": report.to_dict(),
               "model": str(ns.model_dir)}
    write_json(Path(ns.out) / "metrics.json", metrics)
    print(f"accuracy {metrics['valid']['accuracy']:.4f} on {metrics['valid']['n']} pairs")
    _print_outputs({"metrics": Path(ns.out) / "metrics.json"})
    return 0


def _experiment(ns: argparse.Namespace, which: str) -> int:
    from rewardlab.models.base import Pairs
    from rewardlab.stages.experiments import run_compare, run_groups

    model, strength = build_config(ModelConfig, ns), build_config(StrengthConfig, ns)
    experiment = build_config(ExperimentConfig, ns)
    out = Path(ns.out)
    prep = _prepared(ns, strength=strength)
    u = _strength_for(prep.train, prep.valid, ns, out, model, strength, ns.strength_members)
    train, valid = Pairs.from_dataset(prep.train), Pairs.from_dataset(prep.valid)
    if which == "groups":
        rows = run_groups(train, valid, u, model=model, seeds=experiment.seeds, out_dir=out,
                          progress=not ns.quiet)
        for r in rows:
            print(f"group {r['group']:>2}  n={r['n_train']:<6} û={r['mean_strength']:+.3f}  "
                  f"valid acc {r['valid_accuracy_mean']:.4f} ± {r['valid_accuracy_std']:.4f}")
        _print_outputs({"groups": out / "groups.json"})
    else:
        denoise_cfg = build_config(DenoiseConfig, ns)
        rows = run_compare(train, valid, u, model=model, methods=experiment.method_list,
                           seeds=experiment.seeds, eval_every=experiment.eval_every,
                           margin_scale=denoise_cfg.margin_scale, out_dir=out,
                           progress=not ns.quiet)
        for r in rows:
            print(f"{r['method']:<22} valid acc {r['valid_accuracy_mean']:.4f} ± "
                  f"{r['valid_accuracy_std']:.4f}  loss {r['valid_loss']:.4f}  ece {r['ece']:.4f}")
        _print_outputs({"compare": out / "compare.json"})
    return 0


def cmd_run(ns: argparse.Namespace) -> int:
    from rewardlab.stages.run import run_all

    res = run_all(ns.data, out_dir=ns.out, load=build_config(LoadConfig, ns),
                  split=build_config(SplitConfig, ns), model=build_config(ModelConfig, ns),
                  strength=build_config(StrengthConfig, ns),
                  experiment=build_config(ExperimentConfig, ns),
                  strength_members=ns.strength_members, progress=not ns.quiet,
                  report=not ns.no_report)
    b = res.best_method
    gain = b.get("gain_over_baseline")
    print(f"best method: {b['method']} (valid accuracy {b['valid_accuracy_mean']:.4f}"
          + (f", {gain:+.4f} over baseline)" if gain is not None else ")"))
    _print_outputs(res.outputs)
    return 0


def cmd_report(ns: argparse.Namespace) -> int:
    from rewardlab.report import build_report

    res = build_report(ns.run_dir, pair_limit=ns.pair_limit, agree_column=ns.agree_column,
                       progress=not ns.quiet)
    for why in res.skipped:
        print(f"skipped {why}")
    _print_outputs({"report": res.html, "figures": Path(ns.run_dir) / "figures"})
    return 0


def cmd_export(ns: argparse.Namespace) -> int:
    from rewardlab.stages.export import export_pairs
    from rewardlab.stages.train import plan_from_config

    plan = plan_from_config(build_config(DenoiseConfig, ns))
    res = export_pairs(ns.run_dir, plan, ns.out)
    print(f"{res['written']} pairs written ({res['flipped']} flipped, {res['dropped']} dropped, "
          f"{res['identical_left_out']} identical left out)")
    _print_outputs({"pairs": res["file"]})
    return 0


def cmd_synthetic(ns: argparse.Namespace) -> int:
    from rewardlab.data import read_preferences
    from rewardlab.files import write_jsonl
    from rewardlab.models.encode import default_cache_dir, get_encoder
    from rewardlab.synthetic import make_synthetic

    load, model = build_config(LoadConfig, ns), build_config(ModelConfig, ns)
    ds, _ = read_preferences(ns.data, mapping=load.mapping, on_bad=load.on_bad,
                             drop_suspicious=True)
    enc = get_encoder(model.model, max_length=model.max_length, pooling=model.pooling,
                      batch_size=model.encode_batch_size,
                      cache_dir=model.cache_dir or default_cache_dir(), progress=not ns.quiet)
    syn = make_synthetic(ds, encoder=enc, flip_rate=ns.flip_rate, noise=ns.noise,
                         near_tie_share=ns.near_tie_share, seed=model.seed)
    write_jsonl(ns.out, syn.to_list())
    print(f"{len(syn)} pairs, {sum(syn['injected_flip'])} flipped ({ns.noise})")
    _print_outputs({"pairs": ns.out})
    return 0


# --------------------------------------------------------------------------------------------
# Parser

COMMANDS: dict[str, tuple[str, Callable[[argparse.Namespace], int]]] = {
    "inspect": ("Count pairs, formats, token lengths, suspicious and malformed records.",
                cmd_inspect),
    "train": ("Train a reward model (optionally denoised by a strength file) and evaluate it.",
              cmd_train),
    "evaluate": ("Evaluate a saved reward model on any preference data.", cmd_evaluate),
    "strength": ("Measure preference strength (mean and std of an ensemble's reward gaps).",
                 cmd_strength),
    "groups": ("The paper's data-contribution experiment: a model per 10% strength group.",
               lambda ns: _experiment(ns, "groups")),
    "compare": ("The paper's methods comparison: baseline, flip, smoothing, margin, ...",
                lambda ns: _experiment(ns, "compare")),
    "run": ("The main job: strength, groups, compare, final model and report in one folder.",
            cmd_run),
    "report": ("Draw the figures and write report.html from a run folder.", cmd_report),
    "export": ("Write denoised training pairs with a TRL-style margin column.", cmd_export),
    "synthetic": ("Build a semi-synthetic preference set with known flipped labels.",
                  cmd_synthetic),
}


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quiet", action="store_true", help="No progress bars or info messages.")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rewardlab",
        description="Find wrong and ambiguous preference pairs, and train reward models that "
                    "stay good despite them.",
    )
    from rewardlab import __version__

    parser.add_argument("--version", action="version", version=f"rewardlab {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    subs = {name: sub.add_parser(name, help=_escape(text), description=_escape(text))
            for name, (text, _) in COMMANDS.items()}
    data_help = ("Preference data: .jsonl/.json/.csv/.parquet files (optionally .gz), "
                 "save_to_disk folders, or Hugging Face dataset ids.")
    for name in ("inspect", "train", "strength", "groups", "compare", "run", "synthetic"):
        subs[name].add_argument("data", nargs="+", metavar="DATA", help=data_help)

    p = subs["inspect"]
    p.add_argument("--json", action="store_true", help="Print one JSON object on stdout.")
    p.add_argument("--model", default=None,
                   help="Tokenizer for token statistics (default: the bundled MiniLM).")
    add_config(p, LoadConfig, title="loading")

    p = subs["evaluate"]
    p.add_argument("model_dir", metavar="MODEL", help="A model folder written by `train`.")
    p.add_argument("data", nargs="+", metavar="DATA", help=data_help)
    add_config(p, LoadConfig, title="loading")

    for name in ("train", "strength", "groups", "compare", "run", "synthetic"):
        add_config(subs[name], LoadConfig, title="loading")
        # groups, compare and run train single models per seed; --strength-members sizes the
        # ensemble that measures strength, so --members would only confuse there.
        add_config(subs[name], ModelConfig, title="model",
                   defaults={"members": 10} if name == "strength" else None,
                   skip=("members",) if name in ("groups", "compare", "run") else ())
    for name in ("train", "groups", "compare", "run"):
        add_config(subs[name], SplitConfig, title="validation")
    for name in ("strength", "train", "groups", "compare", "run"):
        add_config(subs[name], StrengthConfig, title="strength",
                   skip=() if name in ("strength", "groups", "compare", "run")
                   else ("scheme", "folds", "categories", "tau"))
    for name in ("groups", "compare", "run"):
        subs[name].add_argument("--strength-members", type=int, default=10, metavar="M",
                                help="Ensemble size for measuring strength (default: 10).")
        add_config(subs[name], ExperimentConfig, title="experiments",
                   skip=("methods",) if name == "groups" else ())
    add_config(subs["train"], DenoiseConfig, title="denoising")
    add_config(subs["export"], DenoiseConfig, title="denoising", skip=("strength",))
    add_config(subs["groups"], DenoiseConfig, title="denoising",
               skip=tuple(f.name for f in dataclasses.fields(DenoiseConfig)
                          if f.name != "strength"))
    add_config(subs["compare"], DenoiseConfig, title="denoising",
               skip=tuple(f.name for f in dataclasses.fields(DenoiseConfig)
                          if f.name not in ("strength", "margin_scale")))

    for name in ("train", "strength", "groups", "compare", "run", "evaluate", "synthetic",
                 "export"):
        subs[name].add_argument("-o", "--out", required=True, metavar="OUT",
                                help="Output folder (a file for export and synthetic).")
    subs["run"].add_argument("--no-report", action="store_true",
                             help="Skip the figures and report.html.")
    for name in ("report", "export"):
        subs[name].add_argument("run_dir", metavar="RUN_DIR",
                                help="A folder written by `run` (or by `strength`).")
    subs["report"].add_argument("--pair-limit", type=int, default=60, metavar="N",
                                help="Pairs per list in the pair browser (default: 60).")
    subs["report"].add_argument("--agree-column", default=None, metavar="COLUMN",
                                help="Column holding a second opinion (chosen/rejected or "
                                     "true/false) for the agreement figure.")
    p = subs["synthetic"]
    p.add_argument("--flip-rate", type=float, default=0.2, help="Share of labels flipped.")
    p.add_argument("--noise", choices=["uniform", "near-tie"], default="uniform",
                   help="Which pairs get flipped: any, or mostly near ties.")
    p.add_argument("--near-tie-share", type=float, default=None,
                   help="Subsample so this share of pairs are near ties (default: keep all).")
    for p in subs.values():
        _add_common(p)
    return parser


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


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    ns = parser.parse_args(argv)
    _configure_logging(ns.quiet)
    try:
        return COMMANDS[ns.command][1](ns)
    except ConfigError as exc:
        parser.exit(2, f"rewardlab {ns.command}: error: {exc}\n")
    except (ValueError, FileNotFoundError, OSError, KeyError) as exc:
        if os.environ.get("REWARDLAB_DEBUG"):
            raise
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"rewardlab {ns.command}: error: {msg}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
