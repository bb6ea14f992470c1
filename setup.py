"""Packaging for evnet: `pip install -e .[test]` on a laptop, `.[pi]` on a Raspberry Pi."""

from setuptools import find_packages, setup

setup(
    name="evnet",
    version="0.1.0",
    description="Firmware for Raspberry Pi EV charge points that share a site by Multi-Paxos over MQTT",
    python_requires=">=3.11",
    packages=find_packages(include=["evnet", "evnet.*", "hal", "hal.*", "firmware", "firmware.*",
                                    "central_broker", "central_broker.*"]),
    include_package_data=True,
    install_requires=[
        "paho-mqtt>=2.1,<3",
        "pymodbus>=3.16.1,<3.17",
        "gpiozero>=2.0.1.post3",
        "pyserial==3.5",
        "cryptography>=41",  # Ed25519: drivers' and operators' signed site requests
        "rich>=13",          # Central's terminal dashboard
        "ocpp==2.1.0",       # OCPP 1.6J and 2.0.1 messages and their JSON schemas (firmware/ocpp)
        "websockets>=13,<16",  # OCPP's transport
    ],
    package_data={"central_broker.web": ["static/*"]},
    extras_require={
        "pi": ["lgpio>=0.2"],
        "embedded-broker": ["amqtt==0.12.1"],
        "test": ["pytest>=8", "hypothesis>=6", "amqtt==0.12.1", "ruff>=0.6",
                 "jinja2>=3",    # renders the Home Assistant discovery's templates as Home Assistant would
                 "lgpio>=0.2",  # lgpio: so the real factory is tested failing as on a laptop
                 "selenium>=4.20"],  # Central's browser tests, driving Debian's chromium (no browser download)
    },
    entry_points={"console_scripts": ["evnet = evnet.cli:main"]},
)
