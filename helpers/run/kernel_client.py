"""A kernel client for papermill that cannot miss a message.

nbclient waits for a cell's reply with ``get_msg(timeout=None)``, an unbounded ``poll`` of the
ZMQ socket. Now and then (more often on a loaded machine, and in cells that open ipywidgets
comms) that poll misses the wake-up of a message that has already arrived: the kernel is idle,
the reply sits in the socket, and the run hangs forever (jupyter/nbclient#312). Here an
unbounded wait is a loop of one-second polls; each new poll looks at the socket afresh, so a
message that arrived is picked up within a second. Bounded waits are unchanged.
"""

from __future__ import annotations

from queue import Empty

from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.channels import AsyncZMQSocketChannel
from jupyter_client.manager import AsyncKernelManager
from traitlets import DottedObjectName, Type

__all__ = ["PollingChannel", "PollingKernelClient", "PollingKernelManager"]

POLL_S = 1.0


class PollingChannel(AsyncZMQSocketChannel):
    """A socket channel whose unbounded ``get_msg`` polls in :data:`POLL_S` steps."""

    async def get_msg(self, timeout: float | None = None):  # type: ignore[override]
        if timeout is not None:
            return await super().get_msg(timeout)
        while True:
            try:
                return await super().get_msg(POLL_S)
            except Empty:
                continue


class PollingKernelClient(AsyncKernelClient):
    shell_channel_class = Type(PollingChannel)
    iopub_channel_class = Type(PollingChannel)


class PollingKernelManager(AsyncKernelManager):
    client_class = DottedObjectName("helpers.run.kernel_client.PollingKernelClient")
    client_factory = Type(PollingKernelClient)
