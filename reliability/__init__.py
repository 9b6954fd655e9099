"""`make reliability`: the pipeline under faults, proving "nothing lost, nothing doubled".

Each scenario drives `igdb-pipeline` as a real process against the sandbox (127.0.0.1) and a real
PostgreSQL, then checks what the runs left behind. `python -m reliability --help` lists them.
"""
