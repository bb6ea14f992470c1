"""evnet: firmware for Raspberry Pi EV charge points that share a site by consensus.

This package holds what every part uses: the clock, configuration, logs, the MQTT
client and the `evnet` command. The parts themselves live in `hal`, `firmware` and
`central_broker`.
"""

__version__ = "0.1.0"
