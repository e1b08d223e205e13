"""The built-in ``performance`` tokenizer: the Performance-RNN vocabulary of :mod:`maestro_cli.tokens.performance`."""

from __future__ import annotations

from maestro_cli.hookspecs import hookimpl


def _create(options: None = None):
    from maestro_cli.tokens.performance import PerformanceTokenizer

    return PerformanceTokenizer()


@hookimpl
def register_tokenizers(register):
    register("performance", _create, aliases=("perf", "performance-rnn"), priority=100,
             description="Performance-RNN events (388) + composer/start/end/pad tokens; sustain pedal applied")
