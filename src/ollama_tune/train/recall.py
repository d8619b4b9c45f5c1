"""Validation recall during training: answer held-out questions on the live weights.

Every validation (every `eval_steps` and at each epoch end) the model answers the validation
questions greedily through HF `generate` (batched, left-padded, prompts tokenized exactly as
training tokenizes them), and the answers are scored with the evaluation stage's own metrics:
fact recall, all-facts-right, stop rate, Japanese share. The callback keeps a copy of the best
weights (recall, then stop rate, then validation loss), early-stops after `patience`
validations without improvement, and `restore_best` puts those weights back before saving.
The best weights are also saved to `checkpoints/best/` (with `best.json`), so `--resume`
continues with the same choice; every validation's answers go to `validation_answers.jsonl`
so a person can read what the figures counted.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from ollama_tune.data.model import Example

# (model, prompts as token ids) -> [(answer text, stopped by itself)]
GenerateFn = Callable[[Any, list[list[int]]], list[tuple[str, bool]]]


@dataclass
class Validation:
    """One validation's figures (fractions in 0..1; None when nothing could be measured)."""

    step: int
    epoch: float
    fact_recall: float | None
    fact_accuracy: float | None
    stop_rate: float | None
    japanese_share: float | None
    eval_loss: float | None = None

    def key(self) -> tuple[float, float, float]:
        """Higher is better: recall first, then stopping, then lower validation loss."""
        loss = self.eval_loss if self.eval_loss is not None else float("inf")
        return (self.fact_recall or 0.0, self.stop_rate or 0.0, -loss)

    def record(self) -> dict[str, Any]:
        """The metrics.jsonl fields (prefixed `val_` so they never clash with the trainer's)."""
        out: dict[str, Any] = {"step": self.step, "epoch": round(self.epoch, 4)}
        for name in ("fact_recall", "fact_accuracy", "stop_rate", "japanese_share"):
            value = getattr(self, name)
            out[f"val_{name}"] = None if value is None else round(value, 4)
        return out


def prompt_ids(tokenizer: Any, examples: Sequence[Example], max_seq_len: int) -> list[list[int]]:
    """Each row's prompt tokens, cut from training's own encoding (labels -100 = prompt)."""
    from ollama_tune.train.data import encode_rows

    out = []
    for row in encode_rows(tokenizer, list(examples), max_seq_len).rows:
        first = next((i for i, lab in enumerate(row["labels"]) if lab != -100), len(row["labels"]))
        out.append(row["input_ids"][:first])
    return out


def hf_generate(tokenizer: Any, max_new_tokens: int, batch_size: int = 8) -> GenerateFn:
    """A greedy batched generator over a live (PEFT or plain) HF model."""
    from ollama_tune.train.data import end_of_turn

    eot = tokenizer.convert_tokens_to_ids(end_of_turn(tokenizer))
    stops = [t for t in dict.fromkeys((eot, tokenizer.eos_token_id)) if t is not None]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stops[0]

    def generate(model: Any, prompts: list[list[int]]) -> list[tuple[str, bool]]:
        import torch

        # Decoding is many small matmuls: on 2 idle cores one thread is 7% slower than two,
        # but when anything else runs, two spinning threads made it 9x slower (BENCHMARKS.md).
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return _generate(model, prompts)
        finally:
            torch.set_num_threads(threads)

    def _generate(model: Any, prompts: list[list[int]]) -> list[tuple[str, bool]]:
        import torch

        out: list[tuple[str, bool]] = []
        for start in range(0, len(prompts), batch_size):
            batch = prompts[start : start + batch_size]
            width = max(len(p) for p in batch)
            # Left padding: every answer starts right after its own prompt.
            ids = torch.tensor([[pad] * (width - len(p)) + p for p in batch])
            mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in batch])
            device = next(model.parameters()).device
            with torch.no_grad():
                gen = model.generate(
                    input_ids=ids.to(device),
                    attention_mask=mask.to(device),
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    eos_token_id=stops,
                    pad_token_id=pad,
                    use_cache=True,
                )
            for row in gen[:, width:].tolist():
                cut = next((i for i, t in enumerate(row) if t in stops), None)
                text = tokenizer.decode(row[:cut], skip_special_tokens=True)
                out.append((text.strip(), cut is not None))
        return out

    return generate


def score(examples: Sequence[Example], answers: list[tuple[str, bool]]) -> dict[str, Any]:
    """Aggregate figures of `answers` with the evaluation stage's metrics."""
    from ollama_tune.evaluate.metrics import aggregate, score_answer

    scored = [
        score_answer(
            text,
            ex.answer,
            facts=ex.facts,
            question=ex.question,
            done_reason="stop" if stopped else "length",
        )
        for ex, (text, stopped) in zip(examples, answers, strict=True)
    ]
    return aggregate(scored)


class RecallCallback(TrainerCallback):  # type: ignore[misc]
    """Validates fact recall at each evaluation, keeps the best weights, early-stops."""

    def __init__(
        self,
        examples: Sequence[Example],
        prompts: list[list[int]],
        generate: GenerateFn,
        *,
        every: int | None,
        patience: int | None,
        best_dir: Path | None = None,
        on_record: Callable[[dict[str, Any]], None] | None = None,
        answers_file: Path | None = None,
        at_start: bool = True,
    ) -> None:
        self.examples = list(examples)
        self.at_start = at_start
        self.prompts = prompts
        self.generate = generate
        self.every = every
        self.patience = patience
        self.best_dir = best_dir
        self.on_record = on_record
        self.answers_file = answers_file
        self.history: list[Validation] = []
        self.best: Validation | None = None
        self.best_state: dict[str, Any] | None = None
        self.since_best = 0
        self.stopped = False

    def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if state.is_world_process_zero:
            self._trim_answers(state.global_step)
        # On resume, pick up the validations and the best weights of the interrupted run.
        saved = self.best_dir / "best.json" if self.best_dir else None
        if not state.global_step or saved is None or not saved.is_file():
            return
        doc = json.loads(saved.read_text("utf-8"))
        names = {f.name for f in fields(Validation)}
        self.history = [
            Validation(**{k: v for k, v in r.items() if k in names})
            for r in doc["history"]
            if r["step"] <= state.global_step
        ]
        best = Validation(**{k: v for k, v in doc["best"].items() if k in names})
        if best.step <= state.global_step:
            self.best, self.since_best = best, doc["since_best"]

    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if self.every and state.global_step % self.every == 0:
            control.should_evaluate = True

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        # The last step of an epoch is validated once, even when it is also an `every` step.
        control.should_evaluate = True

    def on_evaluate(
        self, args: Any, state: Any, control: Any, metrics: Any = None, model: Any = None, **kw: Any
    ) -> None:
        if model is None or (self.history and self.history[-1].step == state.global_step):
            return
        if not state.global_step and not self.at_start:
            return
        was_training = model.training
        model.eval()
        try:
            answers = self.generate(model, self.prompts)
        finally:
            model.train(was_training)
        figures = score(self.examples, answers)
        if state.is_world_process_zero:
            self._write_answers(state.global_step, answers)
        loss = (metrics or {}).get("eval_loss")
        val = Validation(
            step=state.global_step,
            epoch=float(state.epoch or 0.0),
            fact_recall=figures["fact_recall"],
            fact_accuracy=figures["fact_accuracy"],
            stop_rate=figures["stop_rate"],
            japanese_share=figures["japanese_share"],
            eval_loss=None if loss is None else float(loss),
        )
        self.history.append(val)
        if self.on_record and state.is_world_process_zero:
            self.on_record(val.record())
        improved = self._update_best(val, model, control)
        if self.best_dir is not None and state.is_world_process_zero:
            self._save(model if improved else None)

    def _write_answers(self, step: int, answers: list[tuple[str, bool]]) -> None:
        if self.answers_file is None:
            return
        self.answers_file.parent.mkdir(parents=True, exist_ok=True)
        with self.answers_file.open("a", encoding="utf-8") as f:
            for ex, (text, stopped) in zip(self.examples, answers, strict=True):
                row = {"step": step, "question": ex.question, "answer": text, "stopped": stopped}
                f.write(json.dumps(row, ensure_ascii=False) + "\n")

    def _trim_answers(self, step: int) -> None:
        """A fresh run starts the file anew; a resumed one keeps the answers up to its step."""
        from ollama_tune._util import atomic_write_text

        if self.answers_file is None or not self.answers_file.is_file():
            return
        if not step:
            self.answers_file.unlink()
            return
        lines = self.answers_file.read_text("utf-8").splitlines(keepends=True)
        kept = [ln for ln in lines if json.loads(ln)["step"] <= step]
        atomic_write_text(self.answers_file, "".join(kept))

    def _update_best(self, val: Validation, model: Any, control: Any) -> bool:
        if self.best is None or val.key() > self.best.key():
            self.best, self.since_best = val, 0
            # Only trainable tensors change (the adapter, or every weight for full fine-tuning).
            self.best_state = {
                n: p.detach().to("cpu", copy=True)
                for n, p in model.named_parameters()
                if p.requires_grad
            }
            return True
        self.since_best += 1
        if self.patience and self.since_best >= self.patience:
            control.should_training_stop = True
            self.stopped = True
        return False

    def _save(self, model: Any) -> None:
        from ollama_tune._util import atomic_dir, atomic_write_json

        if self.best_dir is None or self.best is None:
            return
        if model is not None:
            atomic_dir(self.best_dir / "weights", lambda d: model.save_pretrained(str(d)))
        doc = {
            "best": asdict(self.best),
            "since_best": self.since_best,
            "history": [asdict(v) for v in self.history],
        }
        atomic_write_json(self.best_dir / "best.json", doc)

    def restore_best(self, model: Any) -> bool:
        """Load the best validation's weights into `model`; False when they are already there."""
        if self.best is None:
            return False
        if self.history and self.history[-1].step == self.best.step:
            return False
        if self.best_state is None:
            return self._load_saved(model)
        import torch

        params = dict(model.named_parameters())
        with torch.no_grad():
            for name, value in self.best_state.items():
                params[name].copy_(value.to(params[name].device))
        return True

    def _load_saved(self, model: Any) -> bool:
        """After a resume: the best weights the interrupted run saved."""
        folder = self.best_dir / "weights" if self.best_dir else None
        files = sorted(folder.glob("*.safetensors")) if folder else []
        if not files:
            return False
        from safetensors.torch import load_file

        state = load_file(str(files[0]))
        if hasattr(model, "peft_config"):
            from peft import set_peft_model_state_dict

            set_peft_model_state_dict(model, state)
        else:
            model.load_state_dict(state, strict=False)
        return True

    def summary(self) -> dict[str, Any] | None:
        """run.json's `best`: which validation won and why."""
        if self.best is None:
            return None
        last = self.history[-1]
        why = (
            f"highest validation fact recall ({_pct(self.best.fact_recall)}), "
            f"then stop rate ({_pct(self.best.stop_rate)}), then validation loss"
        )
        return asdict(self.best) | {
            "why": why,
            "last_step": last.step,
            "validations": len(self.history),
            "early_stopped": self.stopped,
            "questions": len(self.examples),
        }


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"
