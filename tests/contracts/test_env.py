"""Reading settings from the environment: defaults, flags, and errors that name the variable."""
import pytest

from contracts import env
from contracts.env import SettingsError


def test_text_strips_and_falls_back_to_the_default():
    assert env.text("X", "d", env={"X": "  v "}) == "v"
    assert env.text("X", "d", env={"X": "  "}) == "d" and env.text("X", "d", env={}) == "d"


def test_required_names_the_missing_variable():
    with pytest.raises(SettingsError, match="environment variable REPORTS_BUCKET is not set"):
        env.required("REPORTS_BUCKET", env={"REPORTS_BUCKET": " "})


@pytest.mark.parametrize(("raw", "expected"), [("true", True), ("ON", True), ("1", True), ("yes", True),
                                                ("false", False), ("0", False), ("Off", False), ("", None), ("x", None)])
def test_flags(raw, expected):
    for default in (True, False):
        assert env.flag("F", default, env={"F": raw}) is (default if expected is None else expected)


def test_what_the_stacks_write_reads_back():
    assert env.flag("F", env={"F": env.flag_value(True)}) is True
    assert env.flag("F", True, env={"F": env.flag_value(False)}) is False


def test_numbers_with_bounds_name_the_variable_and_the_range():
    assert env.integer("N", 7, minimum=1, env={}) == 7 and env.integer("N", 7, env={"N": "3"}) == 3
    with pytest.raises(SettingsError, match="MAX_BATCH='0': expected a positive integer"):
        env.integer("MAX_BATCH", 1000, minimum=1, env={"MAX_BATCH": "0"})
    with pytest.raises(SettingsError, match="N='x': expected an integer"):
        env.integer("N", 1, env={"N": "x"})
    assert env.number("R", 1.0, minimum=0, maximum=1, env={"R": "0.25"}) == 0.25
    for raw in ("2", "nan", "abc"):
        with pytest.raises(SettingsError, match=f"R='{raw}': expected a number between 0 and 1"):
            env.number("R", 1.0, minimum=0, maximum=1, env={"R": raw})


def test_choice_lists_what_is_allowed():
    assert env.choice("C", "auto", ("auto", "b"), env={}) == "auto"
    with pytest.raises(SettingsError, match="C='z': expected one of auto, b"):
        env.choice("C", "auto", ("auto", "b"), env={"C": "z"})
