"""`python -m ollama_tune` — same as the `ollama-tune` console script."""

from ollama_tune.cli import main

if __name__ == "__main__":
    main()
