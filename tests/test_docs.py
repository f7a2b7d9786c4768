"""The README and docs/ stay short, connected and true: every relative link and anchor resolves,
the allowed-values table is the generated one, and the README keeps its five-minute shape."""

import re
from pathlib import Path

import numpy as np
import pytest

from logreg_exp.data.csv_file import read_csv_dataset
from logreg_exp.errors import ConfigError
from logreg_exp.registry import config_reference

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
PAGES = [REPO / "README.md", *sorted(DOCS.glob("*.md"))]

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
LINK = re.compile(r"!?\[(?:[^\]]|\][^(])*?\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")


def prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code blocks, where Markdown links and headings live."""
    lines, fenced = [], False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            lines.append((number, line))
    return lines


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: its rendered text, lower case, punctuation dropped
    (letters, digits, "_" and "-" kept; "*" emphasis goes with the punctuation), each space a
    hyphen."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = CODE_SPAN.sub(lambda m: m.group(2), text)
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading's anchor on a page; a repeated slug gets -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    found = set()
    for _, line in prose_lines(page.read_text()):
        match = HEADING.match(line)
        if not match:
            continue
        slug = github_slug(match.group(2))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def relative_links(page: Path) -> list[tuple[int, str]]:
    links = []
    for number, line in prose_lines(page.read_text()):
        for match in LINK.finditer(CODE_SPAN.sub("", line)):
            target = match.group(1)
            if not re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: ...
                links.append((number, target))
    return links


def test_the_slugs_are_githubs():
    assert github_slug("On a GPU: the training step as a CUDA graph") == (
        "on-a-gpu-the-training-step-as-a-cuda-graph"
    )
    assert github_slug("What `scancel` does") == "what-scancel-does"
    assert github_slug("How good the exercise's model is") == "how-good-the-exercises-model-is"
    assert github_slug("Hydra 1.3 and 1.4") == "hydra-13-and-14"
    assert github_slug("`loss._target_` and *more*") == "loss_target_-and-more"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_and_anchor_resolves(page):
    broken = []
    for number, target in relative_links(page):
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        where = f"{page.relative_to(REPO)}:{number}: {target}"
        if not linked.exists():
            broken.append(f"{where} (no such file)")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{where} (no heading with that anchor)")
    assert not broken, "\n".join(broken)


def test_the_readme_links_every_docs_page_and_the_docs_use_every_picture():
    linked = {
        (page.parent / target.partition("#")[0]).resolve()
        for page in PAGES
        for _, target in relative_links(page)
        if target.partition("#")[0]
    }
    from_readme = {
        (REPO / target.partition("#")[0]).resolve()
        for _, target in relative_links(REPO / "README.md")
    }
    assert not [p.name for p in DOCS.glob("*.md") if p.resolve() not in from_readme]
    assert not [p.name for p in DOCS.glob("*.png") if p.resolve() not in linked]


def test_the_allowed_values_table_is_the_generated_one():
    assert config_reference() in (DOCS / "configuration.md").read_text()


def test_the_readme_is_short_and_maps_the_code_early():
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= 300
    start = lines.index("## How the code is laid out")
    fences = [i for i in range(start, len(lines)) if FENCE.match(lines[i])]
    assert len(fences) >= 2 and "logreg_exp/" in lines[fences[0] + 1]
    assert fences[1] < 150, f"the code map ends on line {fences[1] + 1}"


@pytest.mark.parametrize(
    ("name", "target"), [("bad.csv", "label"), ("big.csv", "kind"), ("bytes.csv", "kind")]
)
def test_the_example_files_give_the_errors_the_docs_print(monkeypatch, name, target):
    """The docs' commands run on these files, in the default dtype, from the repository root."""
    monkeypatch.chdir(REPO)
    with pytest.raises(ConfigError) as raised:
        read_csv_dataset(f"docs/examples/{name}", target, dtype=np.float32)
    assert f"error: {raised.value}\n" in (DOCS / "failures-and-resume.md").read_text()


def test_the_example_patients_are_the_documented_ones():
    data = read_csv_dataset(DOCS / "examples" / "patients.csv", "diagnosis")
    assert (len(data.y), data.x.shape[1]) == (564, 4)
    shown = (DOCS / "evaluation-and-prediction.md").read_text()
    assert (DOCS / "examples" / "new.csv").read_text() in shown


def test_every_example_file_the_docs_name_ships_with_them():
    named = {m for page in PAGES for m in re.findall(r"docs/examples/[\w.-]+", page.read_text())}
    assert named and sorted(n for n in named if not (REPO / n).is_file()) == []


def test_the_job_dirs_the_docs_show_are_named_as_a_sweep_names_them_now():
    """A job dir is its number padded to four digits, then its overrides (0006_...)."""
    old = re.compile(r"(?:multirun|sweep)[\w./-]*/(\d{1,3}|\d{5,})_[\w.]+=")
    found = [f"{p.name}: {m.group(0)}" for p in PAGES for m in old.finditer(p.read_text())]
    assert found == []
