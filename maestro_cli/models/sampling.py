"""Sampling performances from a generator checkpoint (:func:`sample_pieces`, what ``maestro generate`` runs), and
the sampling-time constraint on performance-event sequences (torch imported lazily).

:class:`NoteHold` ends stuck notes while sampling. A model with a finite context loses track of a note whose
note-on slid out of its window (and even inside the window it sometimes never emits the note-off), so a key
can sound for the rest of a piece. The constraint follows every row's sounding notes and clock. Once a note
has sounded longer than ``hazard_s``, its note-off gets at least the log-probability of the most likely event
minus :data:`FLOOR`, a floor that rises by ``slope`` nats per second held (the model's own probability of the
note-off may be vanishingly small, so a bias added to it would not do); at ``max_hold_s`` the note-off is
forced before time may advance, and no time shift may carry a note past it.

The default thresholds come from MAESTRO v3 train pieces (5.66 M notes, sustain pedal folded into the
durations as the tokens encode them): 99.5 % of notes end within 4.9 s, 99.9 % within 9.8 s.
"""

from __future__ import annotations

from pathlib import Path

from maestro_cli.tokens import performance as events

#: Hazard onset and hard cap (seconds); the note-off floor below the top event at the onset, and its rise per second.
HAZARD_S = 4.0
MAX_HOLD_S = 12.0
FLOOR = 6.0
SLOPE = 2.0


class NoteHold:
    """Follows the sounding notes of ``batch`` rows and bounds how long they are held (a ``Constraint``)."""

    def __init__(self, batch: int, max_hold_s: float = MAX_HOLD_S, hazard_s: float | None = None,
                 slope: float | None = None, device="cpu"):
        import torch

        self.cap = round(max_hold_s * events.STEPS_PER_SECOND)
        hazard = HAZARD_S * max_hold_s / MAX_HOLD_S if hazard_s is None else hazard_s
        self.hazard = round(hazard * events.STEPS_PER_SECOND)
        self.slope = (SLOPE if slope is None else slope) / events.STEPS_PER_SECOND  # log-odds per step
        self.onset = torch.full((batch, 128), -1, dtype=torch.long, device=device)  # step of the note-on, -1: silent
        self.now = torch.zeros(batch, dtype=torch.long, device=device)
        self.shift_steps = torch.arange(1, events.MAX_SHIFT + 1, device=device)

    def update(self, tokens) -> None:
        """Advance the clocks and note states by one sampled column (B,)."""
        import torch

        shift = (tokens >= events.TIME_SHIFT) & (tokens < events.VELOCITY)
        self.now += torch.where(shift, tokens - events.TIME_SHIFT + 1, 0)
        rows = torch.arange(len(tokens), device=tokens.device)
        on = tokens < events.NOTE_OFF
        self.onset[rows[on], tokens[on]] = self.now[on]  # a restrike starts the note again
        off = (tokens >= events.NOTE_OFF) & (tokens < events.TIME_SHIFT)
        self.onset[rows[off], tokens[off] - events.NOTE_OFF] = -1

    def held(self):
        """Steps each pitch of each row has sounded (B, 128); -1 for silent pitches."""
        import torch

        return torch.where(self.onset >= 0, self.now[:, None] - self.onset, -1)

    def apply(self, logits):
        """Raise the note-off logits of long notes to the rising floor; force the note-off of notes at the cap."""
        import torch

        held = self.held()
        top = logits[:, :events.NUM_EVENTS].max(dim=1, keepdim=True).values
        floor = top - FLOOR + (held - self.hazard) * self.slope
        offs = logits[:, events.NOTE_OFF:events.TIME_SHIFT]
        offs.copy_(torch.where(held >= self.hazard, torch.maximum(offs, floor), offs))
        longest = held.max(dim=1).values
        if bool((longest < 0).all()):
            return logits
        # no time shift may carry a sounding note past the cap
        too_far = self.shift_steps[None, :] > (self.cap - longest)[:, None]
        shifts = logits[:, events.TIME_SHIFT:events.VELOCITY]
        shifts.masked_fill_(too_far & (longest >= 0)[:, None], -float("inf"))
        at_cap = held >= self.cap
        forced = at_cap.any(dim=1)
        if bool(forced.any()):
            allowed = torch.zeros_like(logits, dtype=torch.bool)
            allowed[:, events.NOTE_OFF:events.TIME_SHIFT] = at_cap
            logits[forced] = logits[forced].masked_fill(~allowed[forced], -float("inf"))
        return logits


def sample_pieces(request, checkpoint: Path, device: str = "auto", threads: int = 2,
                  max_hold: float = MAX_HOLD_S) -> list[bytes]:
    """``request.n`` pieces (MIDI bytes) of about ``request.seconds`` of music sampled from ``checkpoint`` in one
    batch with a KV cache (``request``: :class:`maestro_cli.protocols.GenerationRequest`): the composer's token,
    START and the primer's last half context as the prompt, classifier-free guidance against the ``unknown``
    composer, :class:`NoteHold` with ``max_hold`` seconds (0: none), rows ending at END or after the seconds asked.
    """
    import numpy as np
    import torch

    from maestro_cli.data.composers import resolve_composer
    from maestro_cli.errors import MaestroError
    from maestro_cli.models.runtime import pick_device
    from maestro_cli.models.transformer_checkpoint import load_model

    composer = resolve_composer(request.composer) if request.composer else events.UNKNOWN
    if threads > 0:
        torch.set_num_threads(threads)
    try:
        model, ckpt = load_model(checkpoint, pick_device(device))
    except ValueError as exc:
        raise MaestroError(str(exc)) from None
    except FileNotFoundError as exc:
        raise MaestroError(str(exc), checkpoint) from None
    except (RuntimeError, KeyError, TypeError) as exc:
        raise MaestroError(f"not a transformer checkpoint ({type(exc).__name__}: {exc})", checkpoint) from None
    if ckpt.get("tokenizer", {}).get("vocab") != events.vocab():
        raise MaestroError("checkpoint was trained with another token vocabulary", checkpoint)
    primer = np.zeros(0, np.int64)
    if request.primer is not None:
        if not Path(request.primer).is_file():
            raise MaestroError("primer file not found", request.primer)
        primer = events.encode_midi(request.primer)[1:-1].astype(np.int64)  # drop START and END
    context = model.config.max_seq_len // 2 - 2
    prompt = [events.composer_token(composer), events.START, *primer[-context:].tolist()]
    on = next(model.parameters()).device
    prompts = torch.tensor([prompt] * request.n, device=on)
    unconditional = None
    if composer != events.UNKNOWN:  # classifier-free guidance contrasts the composer with `unknown`
        unconditional = prompts.clone()
        unconditional[:, 0] = events.composer_token(events.UNKNOWN)
    hold = None
    if max_hold > 0:
        hold = NoteHold(request.n, max_hold, device=on)
        for column in prompts[:, 2:].T:  # the primer's notes may still sound
            hold.update(column)
    generator = torch.Generator(device=on).manual_seed(request.seed)
    limit = round(request.seconds * events.STEPS_PER_SECOND)
    elapsed = torch.zeros(request.n, dtype=torch.long, device=on)

    def stop(tokens):
        shift = (tokens >= events.TIME_SHIFT) & (tokens < events.VELOCITY)
        elapsed.add_(torch.where(shift, tokens - events.TIME_SHIFT + 1, 0))
        return (tokens == events.END) | (elapsed >= limit)

    banned = [events.PAD, events.START, *range(events.COMPOSER, events.VOCAB_SIZE)]
    new = model.generate(prompts, max_new=int(request.seconds * 200) + 64, temperature=request.temperature,
                         top_k=request.top_k, top_p=request.top_p, generator=generator, banned=banned, stop=stop,
                         unconditional=unconditional, guidance=request.guidance, constraint=hold)
    return [events.decode_to_midi(np.array([*primer.tolist(), *(t for t in tokens if t != events.END)], np.int64))
            for tokens in new]
