"""Options several commands share, defined once so their flags and help cannot drift apart.

Typer reads an option's declaration without changing it, so one `typer.Option` can be the
default of a parameter in many commands.
"""

from __future__ import annotations

import typer

# ollama_local.resolve_host: --host, else $OLLAMA_HOST, else DEFAULT_HOST; parsed like the client.
HOST_HELP = (
    "Ollama server: HOST, HOST:PORT or http://HOST:PORT "
    "(default: $OLLAMA_HOST, else 127.0.0.1:11434)."
)

HOST = typer.Option(None, "--host", help=HOST_HELP)
JSON = typer.Option(False, "--json", help="Print the result as JSON.")
# `chat` answers many questions from stdin; one JSON document only makes sense with --once.
JSON_ONCE = typer.Option(False, "--json", help="With --once: print the Generation JSON.")
