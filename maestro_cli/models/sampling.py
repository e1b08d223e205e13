"""Sampling-time constraints on performance-event sequences (torch imported by the caller).

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
