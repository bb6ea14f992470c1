"""`evnet demo`: the reference scenario of DESIGN.md on one machine, with real processes.

A broker, Central, three charge points (each `evnet cp` and its `evnet monitor`), three EVs and their
drivers: the timeline is `scenario.py` (pure), the processes `site.py`, what is watched from outside
(the meters by Modbus, the site by MQTT) `watch.py`, the verdicts `checks.py` (pure), the command `cli.py`.
"""
