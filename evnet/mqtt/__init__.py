"""The one MQTT client of every evnet part: a link (paho set up as we need it), payloads, and for
the processes on a critical path a pump that runs the link on its own thread with a fast reader
and writer."""

from evnet.mqtt.link import BrokerAddress, Handler, MqttLink, describe_connect_error, parse_url, read_credentials
from evnet.mqtt.payload import MAX_PACKET, MAX_PAYLOAD, PAYLOAD_VERSION, PayloadError, decode_payload, encode_payload

__all__ = ["MAX_PACKET", "MAX_PAYLOAD", "PAYLOAD_VERSION", "BrokerAddress", "Handler", "MqttLink", "PayloadError",
           "decode_payload", "describe_connect_error", "encode_payload", "parse_url", "read_credentials"]
