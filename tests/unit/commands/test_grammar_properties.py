"""Property-based tests of every setting and every flag: a value outside its grammar is one line naming it and
exit 2, before anything starts; a value inside it is finite and within its documented range.

The agent's settings are driven through ``etcd.py run`` in this process (the same path as a real start, up to the
point where a good value would go on to read the metadata service); the flags of every command through the
parser ``etcd.py`` builds. ``tests/integration/test_bad_input.py`` runs a few of the same cases as real processes.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import math
import os
import threading
from unittest import mock

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from appliance import cli
from appliance.commands.settings import SPECS, load_agent_settings
from appliance.model.errors import ConfigError

# Text a careless operator, a template or a script may hand over.
NASTY = st.sampled_from([
    "nan", "NaN", "-nan", "inf", "-inf", "Infinity", "1e400", "-1e400", "1e-400", "-1", "-0", "0", "0.0",
    "99999999999999999999", "65536", "70000", "1_000", "0x10", "1,5", " 5 ", "5s", "", " ", "\n", "\t", "-", "--",
    "/", "//", "..", "/dev/null", "/proc/self/mem", "relative/path", "💥", "\u200b", "é", "a" * 300,
    "/__appliance/", "/__replication/x/", "true", "null", "[]", "{}", "DEBUG", "json", "private", "auto",
])
GARBAGE = st.one_of(NASTY, st.text(max_size=30), st.floats().map(repr), st.integers().map(str),
                    st.floats(allow_nan=False, allow_infinity=False).map(str))

EXAMPLES = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
SPEC_NAMES = st.sampled_from(SPECS)


def _base_env(tmp: str) -> dict[str, str]:
    return {"DATA_DIR": os.path.join(tmp, "data"), "APPLIANCE_ETCD_BINARY": "/bin/sh",
            "AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://127.0.0.1:1/"}


@EXAMPLES
@given(spec=SPEC_NAMES, text=GARBAGE)
def test_a_setting_is_refused_in_one_line_naming_it_or_accepted_within_its_range(tmp_path, spec, text):
    assume(text != "" and "\0" not in text)  # empty is "unset"; the environment cannot hold a NUL
    environ = {**_base_env(str(tmp_path)), spec.env: text}
    try:
        found = load_agent_settings({}, environ)
    except ConfigError as exc:
        message = str(exc)
        assert "\n" not in message and spec.env in message, message
        assert exc.exit_code == 2
        if spec.parse.refuses(text):
            assert message.startswith(f"{spec.env}: must ") and message.endswith(")"), message
        return
    value = getattr(found, spec.field)
    assert not spec.parse.refuses(text)
    if spec.parse.bounds is not None and value is not None:
        low, high = spec.parse.bounds
        assert math.isfinite(value) and low <= value <= high, (spec.env, text, value)


@EXAMPLES
@given(spec=SPEC_NAMES, text=GARBAGE)
def test_a_flag_wins_and_is_checked_like_its_variable(tmp_path, spec, text):
    assume(text != "")
    try:
        load_agent_settings({spec.field: text}, _base_env(str(tmp_path)))
    except ConfigError as exc:
        assert "\n" not in str(exc) and (spec.flag in str(exc) or spec.env in str(exc)), str(exc)
        if spec.parse.refuses(text):
            assert str(exc).startswith(f"{spec.flag}: must"), str(exc)
    else:
        assert not spec.parse.refuses(text)


@contextlib.contextmanager
def _in_process(environ: dict[str, str]):
    """Run ``cli.main`` here with ``environ`` and stderr captured; the logging set-up it makes is undone."""
    root, hook, err = logging.getLogger(), threading.excepthook, io.StringIO()
    handlers, level = root.handlers[:], root.level
    try:
        with mock.patch.dict(os.environ, environ, clear=True), contextlib.redirect_stderr(err):
            yield err
    finally:
        root.handlers[:], threading.excepthook = handlers, hook
        root.setLevel(level)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=SPEC_NAMES, text=GARBAGE)
def test_the_agent_exits_2_with_one_line_and_touches_nothing(tmp_path, spec, text):
    assume(text != "" and "\0" not in text and spec.parse.refuses(text))
    before = sorted(os.listdir(tmp_path))
    with _in_process({**_base_env(str(tmp_path)), "PATH": os.environ.get("PATH", ""), spec.env: text}) as err:
        code = cli.main(["run"])
    lines = err.getvalue().splitlines()
    assert code == 2 and len(lines) == 1, err.getvalue()
    assert lines[0].startswith(f"etcd.py: error: {spec.env}: ") and "Traceback" not in err.getvalue()
    assert sorted(os.listdir(tmp_path)) == before  # no data directory, nothing written or deleted


def _commands() -> dict[str, argparse.ArgumentParser]:
    top = cli.parser()
    sub = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _typed_flags() -> list[tuple[str, argparse.Action]]:
    return [(name, action) for name, parser in _commands().items() for action in parser._actions
            if action.type is not None and action.option_strings]


def test_every_typed_flag_of_every_command_goes_through_the_grammar():
    found = _typed_flags()
    assert len(found) >= 15  # run's own flags have no type: they are checked as settings
    untyped = [(name, action.option_strings[0], action.type) for name, action in found
               if not hasattr(action.type, "value")]
    assert not untyped, f"flags parsed without the grammar of appliance/commands/values.py: {untyped}"


FLAGS = st.sampled_from(_typed_flags())


@EXAMPLES
@given(flag=FLAGS, text=GARBAGE)
def test_a_flag_of_any_command_is_one_line_and_exit_2_or_within_its_range(flag, text):
    name, action = flag
    value = action.type.value
    try:
        parsed = action.type(text)
    except argparse.ArgumentTypeError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("must") and repr(text)[:20] in str(exc), str(exc)
        return
    if value.bounds is not None:
        low, high = value.bounds
        assert math.isfinite(parsed) and low <= parsed <= high, (name, action.option_strings, text, parsed)


def test_a_refused_flag_is_one_line_through_the_whole_parser():
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            cli.parser().parse_args(["guard", "--endpoints", "http://127.0.0.1:2379", "--max-staleness", "nan",
                                     "--", "true"])
        except SystemExit as stopped:
            code = stopped.code
        else:
            code = None
    assert code == 2
    assert err.getvalue().splitlines() == [
        "etcd.py guard: error: argument --max-staleness: must be a number of seconds from 0.1 to 86400 (got 'nan')"]
