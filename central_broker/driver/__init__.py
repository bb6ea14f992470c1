"""The driver app (`evnet driver`): a client of a site with the driver's own key (docs/driver.md).

`view.py` is the pure fold of what the site publishes into what the driver sees; `decode.py` its checked
door; `app.py` the I/O (the site's client, the broker link, the last ticket on disk); `verbs.py`, `cli.py`
and `prompt.py` the command line and the interactive prompt.
"""

from central_broker.driver.app import DriverApp
from central_broker.driver.view import Closed, DriverView, Ended, Lapsed, MySession, Point, Started

__all__ = ["Closed", "DriverApp", "DriverView", "Ended", "Lapsed", "MySession", "Point", "Started"]
