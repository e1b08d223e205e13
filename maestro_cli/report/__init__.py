"""Practice reports: a performance (recording or MIDI) set against its score, as data (:mod:`.data`) and as one
self-contained HTML page (:mod:`.page`); the audio a page plays (:mod:`.audio`)."""
