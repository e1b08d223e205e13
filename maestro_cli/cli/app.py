"""The ``maestro`` command: a Typer app whose stages are served by pluggy plugins."""

from __future__ import annotations

import os
import sys
from typing import Optional

import typer

from maestro_cli import __version__
from maestro_cli.cli import (
    align,
    data,
    evaluate,
    fetch,
    generate,
    plugins,
    render,
    report,
    tokenize,
    train,
    transcribe,
    view,
)
from maestro_cli.cli.io import install_reporting
from maestro_cli.cli.options import reject_old_option_flag
from maestro_cli.errors import MaestroError, os_reason

app = typer.Typer(
    name="maestro",
    help="Classical piano music on the MAESTRO dataset: fetch, tokenize, train, generate, render, "
    "transcribe, align, report and evaluate. Every stage is served by plugins; see `maestro plugins`. "
    "Backend options are -O key=value; -o names an output file.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"maestro {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show the full traceback on errors."),
    version: Optional[bool] = typer.Option(None, "--version", callback=_version, is_eager=True,
                                           help="Print the version and exit."),
) -> None:
    if debug:
        os.environ["MAESTRO_DEBUG"] = "1"


for module in (fetch, data, tokenize, train, generate, render, transcribe, align, report, view):
    app.command(module.NAME, help=module.command.__doc__, no_args_is_help=False)(module.command)
app.add_typer(evaluate.app, name="evaluate")
app.command("plugins", help=plugins.command.__doc__)(plugins.command)


def _add_plugin_commands() -> None:
    from maestro_cli.plugins import PluginFailure, failures, load_plugins

    for impl in load_plugins().hook.register_commands.get_hookimpls():
        try:
            impl.function(app=app)
        except Exception as exc:  # a broken plugin command must not break the CLI
            failures.append(PluginFailure(impl.plugin_name, f"register_commands: {type(exc).__name__}: {exc}"))


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app, turning errors into one ``error:`` line and an exit code."""
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv or bool(os.environ.get("MAESTRO_DEBUG"))
    try:
        install_reporting()
        reject_old_option_flag(argv)
        _add_plugin_commands()
        code = app(args=argv, standalone_mode=False, prog_name="maestro")
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        if isinstance(code, int) and code:
            sys.exit(code)
    except MaestroError as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:  # the reader closed the pipe (`maestro ... | head -n 1`): stop quietly, like click does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes stdout
        sys.exit(1)
    except Exception as exc:
        from typer._click import exceptions as click_exceptions

        if isinstance(exc, click_exceptions.NoArgsIsHelpError):
            exc.show()
            sys.exit(0)
        if isinstance(exc, click_exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, typer.Exit):
            sys.exit(exc.exit_code)
        if isinstance(exc, typer.Abort):
            print("error: aborted", file=sys.stderr)
            sys.exit(1)
        if debug:
            raise
        if isinstance(exc, OSError) and exc.filename is not None:  # a file the system refused (name too long, ...)
            print(f"error: {exc.filename}: {os_reason(exc)}", file=sys.stderr)
            sys.exit(1)
        print(f"error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)", file=sys.stderr)
        sys.exit(1)
