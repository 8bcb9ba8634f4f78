"""A fake OpenStack (Keystone v3, Nova, Cinder, Glance subset) served over HTTP for tests.

Usage::

    with FakeOpenStack(delay_scale=0.01) as fake:          # uvicorn on 127.0.0.1, free port
        backend = OpenStackBackend(fake.connect_kwargs())  # or monkeypatch fake.os_environ()
        fake.faults.fail("GET", r"/servers/detail$", 503, times=1)
        fake.faults.lose_reply("POST", r"/servers$")  # carried out, but the answer is lost
        ...
        assert fake.auth_count == 1
        assert fake.requests("POST", r"/servers$")[0].json["server"]["networks"] == "auto"

Layout: Keystone under ``/identity`` (``auth_url``), Nova under ``/compute/v2.1`` (microversions
2.1-2.96), Cinder under ``/volume/v3/{project_id}`` (3.0-3.71), Glance under ``/image``. The default
flavors and images include those the default catalogue maps to (``sog.meteor`` ...,
``fedora-24`` ...). Transitions take ``delays[kind] * delay_scale`` seconds and run lazily;
``settle()`` finishes them all at once. Not modelled: keypairs (``key_name`` is refused), images
booted without a volume beyond a bare record, networks other than names, revert/migrate/rebuild,
Cinder attachments API, snapshots and backups.
"""

from tests.fake_openstack.faults import Faults, JournalEntry, Rule
from tests.fake_openstack.identity import Credentials
from tests.fake_openstack.model import Flavor, Image, Server, Volume
from tests.fake_openstack.service import FakeOpenStack

__all__ = [
    "Credentials",
    "FakeOpenStack",
    "Faults",
    "Flavor",
    "Image",
    "JournalEntry",
    "Rule",
    "Server",
    "Volume",
]
