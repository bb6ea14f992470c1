"""ISO 15118-2 message types: every message survives the cable's JSON channel; bad dicts are refused clearly."""

import json

import pytest

from firmware.protocols import iso15118 as m


def _samples() -> list[m.Message]:
    return [
        m.SessionSetupReq(evcc_id="ev-00a1"),
        m.SessionSetupRes(session_id="5e55", response_code=m.OK_NEW_SESSION, evse_id="cp1", timestamp=1.5),
        m.ServiceDiscoveryReq(session_id="5e55"),
        m.ServiceDiscoveryRes(session_id="5e55", payment_options=("ExternalPayment",)),
        m.PaymentServiceSelectionReq(session_id="5e55", payment_option="ExternalPayment"),
        m.PaymentServiceSelectionRes(session_id="5e55"),
        m.AuthorizationReq(session_id="5e55"),
        m.AuthorizationRes(session_id="5e55", evse_processing="Finished"),
        m.ChargeParameterDiscoveryReq(session_id="5e55", energy_request_kwh=20.0, max_current_a=32.0,
                                      departure_time_s=3600.0),
        m.ChargeParameterDiscoveryRes(session_id="5e55", evse_max_current_a=16.0, schedule_id=2,
                                      schedule=(m.ScheduleEntry(0.0, 16.0), m.ScheduleEntry(600.0, 10.0))),
        m.PowerDeliveryReq(session_id="5e55", charge_progress="Renegotiate", schedule_id=2),
        m.PowerDeliveryRes(session_id="5e55", evse_notification="None"),
        m.ChargingStatusReq(session_id="5e55"),
        m.ChargingStatusRes(session_id="5e55", evse_max_current_a=10.0, meter_kwh=1.25,
                            evse_notification="ReNegotiation"),
        m.SessionStopReq(session_id="5e55", charging_session="Pause"),
        m.SessionStopRes(session_id="5e55"),
    ]


@pytest.mark.parametrize("msg", _samples(), ids=lambda msg: type(msg).__name__)
def test_every_message_round_trips_through_json(msg):
    wire = json.loads(json.dumps(msg.to_dict()))
    assert wire["type"] == type(msg).__name__
    assert m.decode(wire) == msg
    assert type(msg).from_dict(wire) == msg


def test_every_request_has_a_response_type():
    requests = [cls for name, cls in m.Message.TYPES.items() if name.endswith("Req")]
    assert len(requests) == 8
    for cls in requests:
        assert m.response_to(cls()).__name__ == cls.__name__[:-3] + "Res"
        assert cls().is_request and not m.response_to(cls())().is_request


def test_integers_are_accepted_where_numbers_are_expected():
    msg = m.decode({"type": "ChargeParameterDiscoveryReq", "energy_request_kwh": 20, "max_current_a": 32})
    assert msg.max_current_a == 32.0 and isinstance(msg.max_current_a, float)


@pytest.mark.parametrize("data, words", [
    ("hello", "expected a dict"),
    ({"type": "Hello"}, "unknown type 'Hello'"),
    ({}, "unknown type None"),
    ({"type": "SessionSetupReq", "evcc": "x"}, "unknown field(s) ['evcc']"),
    ({"type": "ChargeParameterDiscoveryReq", "max_current_a": "32"}, "max_current_a: got '32', expected a number"),
    ({"type": "ChargeParameterDiscoveryReq", "max_current_a": True}, "expected a number"),
    ({"type": "ChargeParameterDiscoveryReq", "max_current_a": float("nan")}, "expected a number"),
    ({"type": "PowerDeliveryReq", "charge_progress": "Go"}, "charge_progress: got 'Go'"),
    ({"type": "PowerDeliveryReq", "schedule_id": 1.5}, "schedule_id: got 1.5, expected an integer"),
    ({"type": "ChargeParameterDiscoveryRes", "schedule": [{"start_s": 0}]}, "schedule[0]"),
    ({"type": "ServiceDiscoveryRes", "payment_options": "Contract"}, "expected a list"),
    ({"type": "SessionSetupReq", "session_id": 7}, "session_id: got 7, expected a string"),
])
def test_malformed_messages_say_what_is_wrong(data, words):
    with pytest.raises(m.MessageError) as err:
        m.decode(data)
    assert words in str(err.value)


def test_from_dict_on_a_subclass_insists_on_that_type():
    with pytest.raises(m.MessageError, match="got SessionStopReq, expected SessionSetupReq"):
        m.SessionSetupReq.from_dict({"type": "SessionStopReq"})


@pytest.mark.parametrize("data, words", [
    ({"type": "ChargeParameterDiscoveryReq", "max_current_a": 10**400}, "expected a number within"),
    ({"type": "ChargeParameterDiscoveryReq", "max_current_a": -(10**400)}, "expected a number within"),
    ({"type": "ChargeParameterDiscoveryReq", "energy_request_kwh": float("inf")}, "expected a number within"),
    ({"type": "ChargeParameterDiscoveryRes", "schedule": [{"start_s": 10**401, "max_current_a": 1}]},
     "schedule[0].start_s"),
    ({"type": "PowerDeliveryReq", "schedule_id": 10**401}, "schedule_id: got"),
    ({"type": "SessionSetupReq", "evcc_id": "x" * 100_000}, "at most 256 characters"),
    ({"type": "ServiceDiscoveryRes", "payment_options": ["Contract"] * 5000}, "5000 items, at most 1024"),
    ({"type": "PowerDeliveryReq", "charge_progress": [[[]]]}, "charge_progress: got"),
    ({"type": ["not", "hashable"]}, "unknown type"),
    ({"type": "SessionSetupReq", 7: "x"}, "unknown field(s)"),
])
def test_out_of_range_and_oversized_fields_are_message_errors(data, words):
    """A 401-digit number once raised OverflowError (and took the engine down): only MessageError now."""
    with pytest.raises(m.MessageError) as err:
        m.decode(data)
    assert words in str(err.value) and len(str(err.value)) < 400
