"""How the book is built, beside the runner: its API page, the pages executed in parallel into the jupyter cache
before Sphinx runs, what each page cost, and the configuration for publishing.

- :func:`api_markdown`: the API page (``book/api.md``), generated from ``__all__`` and docstrings
- ``python -m nslib book-times``: what each page of the last book build cost, read from the jupyter cache; ``make
  book`` calls it after the build (every executed page with its time, which ran in this build, the cold total
  against the book's budget of 25 minutes on a 2-core CPU)
- ``python -m nslib publish-config URL``: the book's config with repository and launch buttons
- :func:`scorecard_markdown` and :func:`execution_markdown`: the scorecard on the book's first page and the
  execution status page, written by ``book-execute`` under ``book/_generated/`` from the executed pages (their glued
  verdicts, readings, atlas and provenance) and the jupyter cache's records
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib
import inspect
import json
import math
import os
import pkgutil
import re
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from .runner._params import ParamError

__all__ = ["BUDGET_MINUTES", "GENERATED", "api_markdown", "book_pages", "book_times", "cmd_book_execute",
           "cmd_book_times", "cmd_publish_config", "documented", "execute_book", "execution_markdown",
           "execution_order", "glued_texts", "public_modules", "publish_config", "scorecard_markdown",
           "write_generated"]

#: The whole book executed cold must stay under this on a 2-core CPU.
BUDGET_MINUTES = 25.0


def book_times(cache: str | Path, since: float | None = None) -> list[dict]:
    """One row per cached page: ``page``, ``seconds`` (its last execution), ``executed`` (in the build that began
    at epoch ``since``; all of them when ``since`` is None)."""
    from jupyter_cache import get_cache

    latest = {}
    for r in get_cache(str(cache)).list_cache_records():  # a page re-executed has older records too: keep the last
        created = r.created.replace(tzinfo=None).timestamp()  # jupyter-cache stores local, naive times
        page = Path(r.uri).name
        if page not in latest or created > latest[page]["created"]:
            latest[page] = {"page": page, "seconds": float((r.data or {}).get("execution_seconds", 0.0)),
                            "executed": since is None or created >= since, "created": created}
    return [{k: v for k, v in row.items() if k != "created"} for _, row in sorted(latest.items())]


def cmd_book_times(args) -> int:
    """``python -m nslib book-times [--cache DIR] [--since EPOCH]``: print each page's time and the cold total."""
    cache = Path(args.cache)
    if not (cache / "global.db").is_file():
        raise ParamError(f"--cache {str(cache)!r}: allowed is a jupyter cache folder (build the book first)")
    rows = book_times(cache, args.since)
    now = [r for r in rows if r["executed"]]
    for r in rows:
        print(f"  {r['page']:<45} {r['seconds']:8.1f} s  {'executed' if r['executed'] else 'from cache'}")
    cold = sum(r["seconds"] for r in rows) / 60
    print(f"this build executed {len(now)} page(s) taking {sum(r['seconds'] for r in now) / 60:.1f} min of page "
          f"time; all pages together: {cold:.1f} min of page time, about {cold / 2:.1f} min of wall time two at a "
          f"time (budget {BUDGET_MINUTES:g} min wall, cold, on 2 cores)")
    if args.since is not None:
        import time

        print(f"this build took {(time.time() - args.since) / 60:.1f} min of wall time (execution and Sphinx)")
    if cold / 2 > BUDGET_MINUTES:
        print(f"nslib: the book's cold execution, about {cold / 2:.1f} min two pages at a time, is over its "
              f"{BUDGET_MINUTES:g}-minute budget", file=sys.stderr)
    return 0


def publish_config(config: dict, repo_url: str) -> dict:
    """The book's configuration for publishing from ``repo_url`` (https://host/owner/repo): repository, issues,
    download and Binder / Colab launch buttons pointing at the notebooks' .ipynb sources. An empty ``repo_url``
    returns the configuration unchanged, so that no page carries a placeholder address."""
    out = json.loads(json.dumps(config))
    if not repo_url:
        return out
    if not re.fullmatch(r"https://[\w.-]+/[\w.-]+/[\w.-]+", repo_url):
        raise ParamError(f"REPO_URL {repo_url!r}: allowed is https://HOST/OWNER/REPO, e.g. https://github.com/me/nslib")
    out["repository"] = {"url": repo_url, "branch": "main", "path_to_book": ""}
    out.setdefault("html", {}).update(use_repository_button=True, use_issues_button=True, use_download_button=True)
    out["launch_buttons"] = {"notebook_interface": "classic", "binderhub_url": "https://mybinder.org",
                             "colab_url": "https://colab.research.google.com"}
    return out


def cmd_publish_config(args) -> int:
    """``python -m nslib publish-config URL [--config F] [--out F]``: write the publishing configuration."""
    import yaml

    config = yaml.safe_load(Path(args.config).read_text(encoding="utf-8"))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(publish_config(config, args.repo_url.strip()), sort_keys=False), encoding="utf-8")
    print(out.resolve())
    return 0


def book_pages(root: str | Path = ".") -> list[Path]:
    """The notebooks of the book's table of contents (``_toc.yml``), in its order."""
    import yaml

    root = Path(root)
    found: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("file"), str):
                found.append(node["file"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8")))
    pages = [root / f"{f.removesuffix('.ipynb')}.ipynb" for f in found]
    return [p for p in pages if p.is_file()]


def _execute_page(path: str, timeout: int, log: str):
    """Execute one notebook in its own folder (as myst-nb does with ``run_in_temp: false``), in a worker process,
    the kernel's own messages going to ``log``; return ``(path, executed notebook, seconds, traceback or None)``."""
    import logging

    import nbformat
    from jupyter_cache.executors.utils import single_nb_execution

    from .runner._runs import stderr_to

    logging.getLogger("traitlets").setLevel(logging.WARNING)
    nb = nbformat.read(path, as_version=4)
    Path(log).parent.mkdir(parents=True, exist_ok=True)
    with stderr_to(Path(log)):
        result = single_nb_execution(nb, cwd=str(Path(path).parent), timeout=timeout, allow_errors=False,
                                     meta_override=True)
    return path, result.nb, result.time, result.exc_string if result.err is not None else None


def execution_order(pages: list[Path], last: dict[str, float]) -> list[Path]:
    """Longest first, so that two workers finish together: by each page's last recorded execution time, else (a
    fresh clone has none) by its atlas's time per point (:func:`nslib.atlas.page_seconds`); pages known by neither
    go first."""
    from .atlas import page_seconds

    def seconds(page: Path) -> float:
        known = last.get(page.name)
        if known is None:
            known = page_seconds(page.stem) if page.suffix == ".ipynb" else None
        return math.inf if known is None else known

    return sorted(pages, key=lambda p: -seconds(p))


def execute_book(cache: str | Path, pages: list[Path], workers: int = 2, timeout: int = 600,
                 report=print) -> list[str]:
    """Execute every page not yet in the jupyter ``cache`` (the one ``jupyter-book build`` reads with
    ``execute_notebooks: cache``), ``workers`` at a time, longest first (:func:`execution_order`); cache each
    executed notebook exactly as myst-nb would. Return the pages that failed (their tracebacks are reported), so that
    the Sphinx build that follows only renders. A page that fails here is not cached: the build would run it again."""
    from concurrent.futures import ProcessPoolExecutor, as_completed

    import nbformat
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    store = get_cache(str(cache))
    todo, last = [], {}
    for r in store.list_cache_records():  # earlier executions of a page tell how long it takes
        last[Path(r.uri).name] = float((r.data or {}).get("execution_seconds", 0.0))
    for page in pages:
        try:
            store.match_cache_notebook(nbformat.read(page, as_version=4))
        except KeyError:
            todo.append(page)
    todo = execution_order(todo, last)
    report(f"book: {len(pages) - len(todo)} of {len(pages)} page(s) cached; executing {len(todo)} "
           f"with {workers} worker(s)")
    failed = []
    if not todo:
        return failed
    with ProcessPoolExecutor(max_workers=min(workers, len(todo))) as pool:
        logs = Path(cache).resolve().parent / "kernel-logs"
        futures = [pool.submit(_execute_page, str(p.resolve()), timeout, str(logs / f"{p.stem}.log")) for p in todo]
        for fut in as_completed(futures):
            path, nb, seconds, error = fut.result()
            name = Path(path).name
            if error is not None:
                failed.append(name)
                log = logs / f"{Path(path).stem}.log"
                report(f"book: {name} FAILED after {seconds:.0f} s (its kernel's log: {log})\n{error}")
                continue
            store.cache_notebook_bundle(CacheBundleIn(nb, path, data={"execution_seconds": seconds}),
                                        check_validity=False, overwrite=True)
            report(f"book: {name} executed in {seconds:.0f} s")
    return failed


def cmd_book_execute(args) -> int:
    """``python -m nslib book-execute [--workers N]``: execute the book's pages into its jupyter cache in parallel
    (``make book`` runs it before ``jupyter-book build``); exit 1 naming the pages whose execution failed."""
    import yaml

    config = yaml.safe_load(Path("_config.yml").read_text(encoding="utf-8")) if Path("_config.yml").is_file() else {}
    timeout = int((config or {}).get("execute", {}).get("timeout", 600))
    from .atlas import STRICT_ENV

    os.environ[STRICT_ENV] = "1"  # the pages' kernels inherit it: a page that disagrees with its own atlas point fails
    start = time.time()
    failed = execute_book(args.cache, book_pages("."), args.workers, timeout,
                          report=lambda line: print(line, file=sys.stderr, flush=True))
    write_generated(args.cache, ".", since=start)
    if failed:
        print(f"nslib: book pages failed to execute: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


# --- the scorecard and the execution status page ---

#: Where ``book-execute`` writes the book's generated sections (git ignores it; pages include them).
GENERATED = Path("book") / "_generated"
_GLUE_PREFIX = "application/papermill.record/"  # how myst-nb's glue(display=False) stores a value


def glued_texts(nb) -> dict[str, str]:
    """Every text an executed notebook glued (``nslib.glue_text``): name -> text."""
    import ast

    out = {}
    for cell in nb.get("cells", []):
        for o in cell.get("outputs", []):
            name = o.get("metadata", {}).get("scrapbook", {}).get("name")
            text = o.get("data", {}).get(_GLUE_PREFIX + "text/plain")
            if name and text is not None:
                try:
                    out[name] = str(ast.literal_eval(text))
                except (ValueError, SyntaxError):
                    out[name] = str(text)
    return out


def _executed(cache: str | Path, pages: list[Path]) -> dict[Path, tuple[Any, Any]]:
    """page -> (its executed notebook, its cache record), for every page the jupyter cache holds as it stands."""
    import nbformat
    from jupyter_cache import get_cache

    store = get_cache(str(cache))
    out = {}
    for page in pages:
        try:
            record = store.match_cache_notebook(nbformat.read(page, as_version=4))
        except KeyError:
            continue
        out[page] = (store.get_cache_bundle(record.pk).nb, record)
    return out


def _state_html(state: str) -> str:
    from .verdicts import COLOURS, MARKS

    return (f'<span style="color:{COLOURS[state]};font-weight:600;white-space:nowrap">{MARKS[state]} '
            f'{state}</span>')


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


@functools.lru_cache(maxsize=None)
def _nslib_metadata(notebook: Path) -> dict:
    """A notebook's ``metadata.nslib``, read once per build (the scorecard asks for it once per claim)."""
    return json.loads(notebook.read_text(encoding="utf-8")).get("metadata", {}).get("nslib", {})


def _setup_note(notebook: Path, claim: str) -> str:
    """" (as close as ...)" from the notebook's ``metadata.nslib.setup_note``: how its rerun of the paper's set-up
    differs from the paper's (the Edge of Stability page runs the paper's nets on MNIST, where the paper used
    CIFAR-10). A string covers every claim of the page, a mapping claim id -> note only those it names; empty where
    the page runs the authors' own set-up."""
    note = _nslib_metadata(notebook).get("setup_note")
    if isinstance(note, dict):
        note = note.get(claim)
    return f" ({note})" if note else ""


def scorecard_markdown(executed: dict[Path, Any]) -> str:
    """The scorecard (MyST): per claim, its words, whose claim it is (the paper's or this book's own), the verdict
    of this build in a word and a colour with its one-line reading (a "does not hold" says whether it stands against
    the paper on its own set-up, or on the book's closest rerun of it, or is this book's own claim), and its
    distribution over the atlas
    (with the groups that decided it; a seed-independent claim counted once); a marker
    where the verdict rests on low-precision rounding (computed on this machine's CPU kernels, where the paper used
    GPUs). Rows come from the executed pages' glue; a page not executed says so."""
    from .runner._notebooks import load_notebook
    from .verdicts import STATES

    rows = ["| page | claim | whose | verdict in this build | over the atlas |", "|---|---|---|---|---|"]
    for page, nb in executed.items():
        info = load_notebook(page.stem)
        texts = glued_texts(nb) if nb is not None else {}
        rounding = bool((info.atlas or {}).get("kernels"))
        for i, (cid, words) in enumerate(info.claims.items()):
            link = f"{{doc}}`../notebooks/{page.stem}`" if i == 0 else ""
            state = texts.get(f"state-{cid}", "").split(" ", 1)[-1]
            if state in STATES:
                reading = texts.get(f"reading-{cid}", state)
                verdict = _state_html(state) + _cell(reading[len(state):] if reading.startswith(state) else
                                                     f": {reading}")
            else:
                verdict = "not executed in this build"
            if state == STATES[1]:  # a "does not hold" says what it is evidence of
                note = _setup_note(info.path, cid)  # where the rerun differs from the paper's set-up, it says how
                verdict += ((f" — <em>against the paper's claim, on this book's closest rerun of its set-up{note}</em>"
                             if note else " — <em>against the paper, on its own set-up</em>")
                            if info.kind(cid) == "paper" else
                            " — <em>this book's own claim, found not to hold; not a finding against the paper</em>")
            if rounding:
                verdict += (' <span title="rests on float16/bfloat16 rounding: computed with this CPU\'s kernels; '
                            'the paper used GPUs">⚙ CPU kernels here</span>')
            whose = "this book" if info.kind(cid) == "book" else "paper"
            rows.append(f"| {link} | {_cell(words)} | {whose} | {verdict} | "
                        f"{_cell(texts.get(f'atlas-{cid}', 'no atlas'))} |")
    return "\n".join(rows) + "\n"


def execution_markdown(executed: dict[Path, tuple[Any, Any]], since: float | None) -> str:
    """The execution status table (MyST): per page, when it was executed, how long it took, whether this build ran
    it (at or after epoch ``since``) or took it from the cache, and the hardware and parameters of its run (its glued
    provenance)."""
    rows = ["| page | executed (UTC) | seconds | in this build | computed with |", "|---|---|---|---|---|"]
    for page, (nb, record) in executed.items():
        texts = glued_texts(nb)
        created = record.created.replace(tzinfo=None)  # jupyter-cache stores local, naive times
        seconds = float((record.data or {}).get("execution_seconds", 0.0))
        how = "executed" if since is None or created.timestamp() >= since else "from the cache"
        when = dt.datetime.fromtimestamp(created.timestamp(), dt.timezone.utc).strftime("%Y-%m-%d %H:%M")
        rows.append(f"| {{doc}}`../notebooks/{page.stem}` | {when} | {seconds:,.0f} | {how} | "
                    f"{_cell(texts.get('provenance', 'not recorded'))} |")
    return "\n".join(rows) + "\n"


def write_generated(cache: str | Path, root: str | Path = ".", since: float | None = None) -> list[Path]:
    """Write ``book/_generated/scorecard.md`` and ``execution.md`` from the jupyter cache (atomically); pages
    executed at or after epoch ``since`` count as run by this build."""
    root = Path(root)
    pages = [p for p in book_pages(root) if p.suffix == ".ipynb"]
    executed = _executed(cache, pages)
    folder = root / GENERATED
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in (("scorecard.md", scorecard_markdown({p: executed.get(p, (None, None))[0] for p in pages})),
                       ("execution.md", execution_markdown(executed, since))):
        tmp = folder / f".{name}.tmp-{os.getpid()}"
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, folder / name)
        written.append(folder / name)
    return written


# --- the API page ---

def public_modules() -> list[ModuleType]:
    """The page kit, the runner, the verdict, the figure and glue modules, the atlas, the evidence and device check,
    the book's builders, the command line, every tool module and every finding module."""
    import nslib

    mods = [nslib, nslib.runner] + [importlib.import_module(f"nslib.{m}") for m in (
        "verdicts", "figures", "glue", "atlas", "evidence", "devicecheck", "bookbuild", "cli")]
    for pkg in (nslib.tools, nslib.findings):
        mods += [importlib.import_module(f"{pkg.__name__}.{m.name}") for m in pkgutil.iter_modules(pkg.__path__)
                 if not m.name.startswith("_")]
    return mods


#: Sphinx roles and reST literals in docstrings, as the API page (MyST, without autodoc) shows them: as code.
_ROLE = re.compile(r":(?:func|class|meth|mod|data|attr|exc|obj):`~?([^`]+)`")


def _as_myst(text: str) -> str:
    """A docstring's reST made readable in MyST: ``:func:`x``` and ````x```` become `` `x` ``."""
    text = _ROLE.sub(lambda m: f"`{m.group(1).split('.')[-1] if m.group(0).find('~') > 0 else m.group(1)}`", text)
    return re.sub(r"``([^`]+)``", r"`\1`", text)


def _summary(doc: str) -> str:
    """A docstring's first paragraph, whole, on one line."""
    paragraph = []
    for line in doc.strip().splitlines():
        if not line.strip():
            break
        paragraph.append(line.strip())
    return " ".join(paragraph)


def documented(module: ModuleType, name: str) -> str | None:
    """The description of ``module.name``: its docstring's first paragraph (functions, classes, modules), or the
    ``#:`` comment above its assignment (constants), as MyST. None when it has neither."""
    obj = getattr(module, name)
    if inspect.ismodule(obj) or inspect.isclass(obj) or callable(obj):
        doc = inspect.getdoc(obj)
        return _as_myst(_summary(doc)) if doc else None
    # a re-exported constant is documented where it is assigned: look in the module, then in nslib's others
    candidates = [module] + [m for k, m in sorted(sys.modules.items()) if k.startswith("nslib") and m is not module]
    for mod in candidates:
        try:
            source = inspect.getsource(mod)
        except (OSError, TypeError):
            continue
        m = re.search(rf"^#: (.+(?:\n#: .+)*)\n{re.escape(name)}\b", source, flags=re.M)
        if m:
            return _as_myst(" ".join(line.removeprefix("#: ").strip() for line in m.group(1).splitlines()))
    return None


def _signature(obj) -> str:
    if inspect.isclass(obj) or inspect.isfunction(obj):
        try:  # the annotations as the reader wrote them, not as the strings `from __future__ import annotations` keeps
            sig = str(inspect.signature(obj, eval_str=True))
        except (NameError, TypeError, ValueError, AttributeError, SyntaxError):
            try:
                sig = str(inspect.signature(obj)).replace("'", "")
            except (TypeError, ValueError):
                return ""
        return sig if len(sig) <= 60 else "(...)"
    return ""


def api_markdown() -> str:
    """Markdown (MyST) tables, one per public module: name, signature and one-line description."""
    out = []
    for mod in public_modules():
        title = _as_myst(_summary(inspect.getdoc(mod) or "")).removeprefix(f"{mod.__name__}: ")
        out.append(f"**`{mod.__name__}`**: {title}\n")
        out.append("| name | what it is |\n|---|---|")
        for name in mod.__all__:
            if name == "__version__":
                continue
            obj = getattr(mod, name)
            shown = f"{name}{_signature(obj)}".replace("|", "\\|")
            desc = (documented(mod, name) or "").replace("|", "\\|")
            out.append(f"| `{shown}` | {desc} |")
        out.append("")
    return "\n".join(out)
