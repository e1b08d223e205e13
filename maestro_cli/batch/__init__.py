"""Running a batch stage over many files, independent of any stage or music domain.

``worker.py`` is what every executor runs inside a worker (build the backend once, then one item after another);
``local.py`` the built-in executor (in this process, or a process pool); ``files.py`` expands folders and manifests
into input files and checks the planned outputs; ``manifest.py`` writes the JSON-lines record of a run.
"""
