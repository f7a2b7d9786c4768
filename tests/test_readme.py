"""The README's two first commands are what a new user runs; CI must run the same test line."""

from tests.helpers import REPO


def readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = text.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def test_readme_opens_with_a_run_command_and_a_test_command():
    run, test = readme_commands()
    assert run.endswith("python -m logreg_exp")
    assert test.endswith("python -m pytest")


def test_ci_runs_the_readme_test_command_verbatim():
    _, test = readme_commands()
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert any(line == test or line.startswith(test + " || exit") for line in ci)


def test_the_run_command_installs_what_the_first_examples_need():
    """The pictures (plots) and experiment=breast_cancer (sklearn), which the docs run next."""
    run, _ = readme_commands()
    extras = run.split('pip install -q -e ".[', 1)[1].split("]", 1)[0].split(",")
    assert {"plots", "sklearn"} <= set(extras)
