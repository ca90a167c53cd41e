"""Log lines: one record, one line, as text or JSON, whatever the message or exception holds."""

import json
import logging
import sys

import pytest

from appliance.adapters import logs

WHEN = 1714564800.25  # 2024-05-01T12:00:00.250Z


def record(message: str, *args, exc: bool = False, level: int = logging.INFO) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("bad\nvalue")
        except ValueError:
            exc_info = sys.exc_info()
    made = logging.LogRecord("agent", level, __file__, 1, message, args, exc_info)
    made.created = WHEN
    return made


@pytest.mark.parametrize("made,line", [
    pytest.param(record("serve: %s", "3 members"), "2024-05-01T12:00:00Z INFO agent: serve: 3 members", id="plain"),
    pytest.param(record("first\nsecond\r\nthird"), "2024-05-01T12:00:00Z INFO agent: first\\nsecond\\r\\nthird",
                 id="newlines-escaped"),
    pytest.param(record("cycle failed", level=logging.ERROR, exc=True),
                 "2024-05-01T12:00:00Z ERROR agent: cycle failed\\nTraceback (most recent call last):\\n",
                 id="exception"),
])
def test_text(made, line):
    text = logs.formatter("text").format(made)
    assert "\n" not in text and "\r" not in text
    assert text.startswith(line), text


@pytest.mark.parametrize("made,fields", [
    pytest.param(record("serve: %s", "3 members"),
                 {"ts": "2024-05-01T12:00:00.250Z", "level": "INFO", "logger": "agent", "message": "serve: 3 members"},
                 id="plain"),
    pytest.param(record("first\nsecond", level=logging.WARNING),
                 {"ts": "2024-05-01T12:00:00.250Z", "level": "WARNING", "logger": "agent",
                  "message": "first\nsecond"}, id="newline-kept-in-the-value"),
    pytest.param(record("snapshot \u2028 caf\u00e9", level=logging.ERROR),
                 {"ts": "2024-05-01T12:00:00.250Z", "level": "ERROR", "logger": "agent",
                  "message": "snapshot \u2028 caf\u00e9"}, id="unicode-line-separator"),
])
def test_json(made, fields):
    line = logs.formatter("json").format(made)
    assert len(line.splitlines()) == 1 and line.isascii(), line
    assert json.loads(line) == fields


def test_json_exception_is_one_field_of_the_same_line():
    line = logs.formatter("json").format(record("cycle failed", level=logging.ERROR, exc=True))
    assert len(line.splitlines()) == 1
    entry = json.loads(line)
    assert entry["message"] == "cycle failed"
    assert entry["exception"].startswith("Traceback (most recent call last):")
    assert entry["exception"].endswith("ValueError: bad\nvalue")


def test_unknown_format():
    with pytest.raises(ValueError, match="text, json"):
        logs.formatter("yaml")


@pytest.mark.parametrize("env,fmt", [
    pytest.param({}, logs.TextFormatter, id="unset"),
    pytest.param({"LOG_FORMAT": "json"}, logs.JsonFormatter, id="json"),
    pytest.param({"LOG_FORMAT": "JSON "}, logs.JsonFormatter, id="json-any-case"),
    pytest.param({"LOG_FORMAT": "yaml"}, logs.TextFormatter, id="unknown-is-text-outside-the-agent"),
])
def test_setup_follows_log_format_when_not_given(monkeypatch, env, fmt):
    monkeypatch.delenv("LOG_FORMAT", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        logs.setup()
        assert type(root.handlers[0].formatter) is fmt
        logs.setup("INFO", "text" if fmt is logs.JsonFormatter else "json")  # an explicit format wins
        assert type(root.handlers[0].formatter) is not fmt
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)


def test_an_unexpected_failure_is_one_error_line_and_its_traceback_only_at_debug(caplog):
    import logging

    from appliance.adapters import logs

    logger = logging.getLogger("agent-test")
    with caplog.at_level(logging.DEBUG, logger="agent-test"):
        try:
            {}["missing"]
        except KeyError:
            logs.unexpected(logger, "%s failed this cycle", "records")
    error, debug = caplog.records
    assert (error.levelname, error.getMessage(), error.exc_info) == \
        ("ERROR", "records failed this cycle: KeyError: 'missing'", None)
    assert debug.levelname == "DEBUG" and debug.exc_info is not None
