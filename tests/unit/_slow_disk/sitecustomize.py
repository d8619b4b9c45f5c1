"""Test hook, on PYTHONPATH only in test_interrupts.py: a disk so slow a signal lands mid-write.

With OLLAMA_TUNE_TEST_SLOW_WRITE=MARKER, writing a `*.tmp` file through `Path.write_text`
writes half the text, creates MARKER and sleeps, so the test can signal the real CLI while
the temporary file is half written.
"""

import os
import pathlib
import time

_MARKER = os.environ.get("OLLAMA_TUNE_TEST_SLOW_WRITE")
if _MARKER:
    _write_text = pathlib.Path.write_text

    def _slow(self, data, *args, **kwargs):  # type: ignore[no-untyped-def]
        if not self.name.endswith(".tmp"):
            return _write_text(self, data, *args, **kwargs)
        with open(self, "w", encoding="utf-8") as fh:
            fh.write(data[: len(data) // 2])
            fh.flush()
            pathlib.Path(_MARKER).touch()
            time.sleep(60)
            fh.write(data[len(data) // 2 :])
        return len(data)

    pathlib.Path.write_text = _slow  # type: ignore[method-assign]
