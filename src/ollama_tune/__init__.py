"""ollama-tune: turn your own question→answer data into a custom Ollama model.

Pipeline: data (check/convert/split) → customize (Modelfile) or train (LoRA) → export (GGUF)
→ create in Ollama → evaluate → report. Each stage is a module; `cli` is the only place that
prints or exits.
"""

__version__ = "0.1.0"
