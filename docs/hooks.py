"""mkdocs hook: publish repository files that live outside ``docs/`` and resolve the links to them.

The pages link to the measured results (``benchmarks/results/*``) and to the adapters' READMEs by their
paths in the repository (``../benchmarks/results/encode.md``), so the links also work when the Markdown
is read on a forge.  At build time this hook adds those files to the site under the same paths, and
rewrites each relative link that leaves ``docs/`` to point at the added file.  Nothing is copied into
the repository, and ``mkdocs build --strict`` still fails on a link to anything else.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files, InclusionLevel
from mkdocs.structure.pages import Page

ROOT = Path(__file__).resolve().parents[1]
#: Repository files published beside the pages, as glob patterns relative to the repository root.
PUBLISHED = (
    "benchmarks/results/*.md",
    "benchmarks/results/*.json",
    "benchmarks/results/*.png",
    "integrations/*/README.md",
)
#: Repository files whose links go to a page of the site instead (the adapters' READMEs link the front page).
ALIASES = {"README.md": "index.md"}
#: A Markdown link or image target: ``](target)`` or ``](target#anchor)``.
LINK = re.compile(r"\]\((?P<target>[^)\s#]+)(?P<anchor>#[^)\s]*)?\)")


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add every published repository file to the site, at its path in the repository."""
    for pattern in PUBLISHED:
        for path in sorted(ROOT.glob(pattern)):
            rel = path.relative_to(ROOT).as_posix()
            files.append(File.generated(config, rel, abs_src_path=str(path), inclusion=InclusionLevel.NOT_IN_NAV))
    return files


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Point each link that leaves ``docs/`` at the published copy of its target."""
    docs = Path(config.docs_dir).resolve()
    src = Path(page.file.abs_src_path or "").resolve()
    here = src.parent.relative_to(ROOT).as_posix()  # the page's folder, relative to the repository
    page_dir = posixpath.dirname(page.file.src_uri)

    def rewrite(m: re.Match[str]) -> str:
        target = m.group("target")
        if "://" in target or target.startswith(("/", "mailto:")):
            return m.group(0)
        in_repo = posixpath.normpath(posixpath.join(here, target))
        if (ROOT / in_repo).resolve().is_relative_to(docs):
            if src.is_relative_to(docs):
                return m.group(0)  # from one page of docs/ to another: mkdocs resolves (and checks) it
            site = (ROOT / in_repo).resolve().relative_to(docs).as_posix()  # from a published file into docs/
        else:
            site = ALIASES.get(in_repo, in_repo)
        if files.get_file_from_path(site) is None:
            return m.group(0)  # not published: left for mkdocs to report
        return f"]({posixpath.relpath(site, page_dir or '.')}{m.group('anchor') or ''})"

    return LINK.sub(rewrite, markdown)
