"""The documents hold what the code holds: the exit codes and the settings tables, the design headings the code
cites, links that resolve, and a README that stays a front door."""

import pathlib
import re

import pytest

from appliance.commands.settings import SPECS
from appliance.model.exit_codes import MEANINGS

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOCS = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]


def section(path: pathlib.Path, heading: str) -> str:
    """The text of the section ``heading`` (a ``## `` heading) of ``path``, to the next heading of its level."""
    text = path.read_text()
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else len(text)]


def table_rows(text: str) -> list[list[str]]:
    """The cells of the first Markdown table in ``text``, header and separator left out."""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    first = text.splitlines().index(lines[0])
    rows = []
    for line in text.splitlines()[first + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_the_exit_codes_table_is_the_code_s():
    rows = table_rows(section(ROOT / "docs" / "reference.md", "Exit codes"))
    assert [(int(code), meaning) for code, meaning in rows] == [(int(c), m) for c, m in MEANINGS.items()]


def test_the_settings_table_names_every_setting_and_flag_and_nothing_else():
    first_column = " ".join(row[0] for row in table_rows(section(ROOT / "docs" / "reference.md", "Settings")))
    assert set(re.findall(r"`([A-Z][A-Z0-9_]+)`", first_column)) == {spec.env for spec in SPECS}
    assert set(re.findall(r"`(--[a-z-]+)`", first_column)) == {spec.flag for spec in SPECS}


def test_the_accepted_values_table_is_the_grammar_s():
    rows = table_rows(section(ROOT / "docs" / "reference.md", "What each setting accepts"))
    assert rows == [[f"`{spec.env}`", spec.parse.allowed] for spec in SPECS]


def test_the_flags_table_is_the_grammar_s():
    from appliance import cli

    rows = table_rows(section(ROOT / "docs" / "reference.md", "What each flag accepts"))
    assert rows == [[f"`{name}`", f"`{action.option_strings[0]}`", action.type.value.allowed]
                    for name, action in cli.typed_flags(cli.parser())]


def cited_design_headings() -> set[str]:
    found = set()
    for path in list((ROOT / "appliance").rglob("*.py")) + list((ROOT / "tests").rglob("*.py")):
        text = " ".join(path.read_text().split())  # a citation may break across lines
        found |= set(re.findall(r'docs/design\.md, "([^"]+)"', text))
    return found


def test_every_design_heading_the_code_cites_exists():
    headings = set(re.findall(r"^#+ (.+)$", (ROOT / "docs" / "design.md").read_text(), re.M))
    cited = cited_design_headings()
    assert cited and cited <= headings, cited - headings


def test_every_document_the_code_cites_is_in_the_repository():
    cited = set()
    for path in (ROOT / "appliance").rglob("*.py"):
        cited |= set(re.findall(r"\b((?:docs/)?[A-Za-z_-]+\.md)\b", path.read_text()))
    assert cited and all((ROOT / name).exists() for name in cited), cited


@pytest.mark.parametrize("path", DOCS, ids=[p.name for p in DOCS])
def test_relative_links_resolve(path):
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", path.read_text()):
        if "://" not in target and not target.startswith("mailto:"):
            assert (path.parent / target).exists(), f"{path.name}: {target}"


def test_the_readme_is_a_front_door():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 300
    assert "make demo" in readme and "make test" in readme
    for name in ("design", "getting-started", "operations", "reference", "multiregion", "testing"):
        assert f"docs/{name}.md" in readme, name
