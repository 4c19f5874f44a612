"""What a zygote child does with its request: a call, a script as ``python`` would run it, or a main function.

Forked by :class:`~mltoolkit.processes.zygote.ZygoteServer`, the child has its
own process group and dies with the zygote; the zygote watches its caller's
connection and reports its exit status.
"""

from __future__ import annotations

import importlib
import os
import pickle
import socket
import traceback
from typing import Any

from mltoolkit.errors import ZygoteError
from mltoolkit.processes.warm_script import ZygoteBaseline, run_function_as_main, run_script, warm_refusal
from mltoolkit.processes.zygote_wire import recv_message, send_message

__all__ = ["serve_child"]


def serve_child(connection: socket.socket, baseline: ZygoteBaseline) -> None:
    """Read the request on ``connection`` and serve it (a script ends the process)."""
    request, fds = recv_message(connection, with_fds=True)
    kind = request.get("kind")
    if kind == "call":
        _run_call_child(connection, request)
    elif kind == "script":
        if _adopt_caller(connection, request, fds, baseline):
            run_script(list(request["argv"]), request.get("umask"), baseline)
    elif kind == "main":
        _run_main_child(connection, request, fds, baseline)
    else:
        send_message(connection, {"ok": False, "error": ZygoteError(f"unknown request {kind!r}")})


def _run_call_child(connection: socket.socket, request: dict) -> None:
    send_message(connection, {"pid": os.getpid()})
    try:
        target = _import_function(request["function"])
        reply = {"ok": True, "value": target(*request["args"], **request["kwargs"])}
    except BaseException as error:  # sent back and re-raised in the caller
        reply = {"ok": False, "error": error, "traceback": traceback.format_exc()}
    try:
        send_message(connection, reply)
    except (pickle.PicklingError, TypeError, AttributeError) as error:
        problem = ZygoteError(f"result of {request['function']} cannot be pickled: {error}")
        send_message(connection, {"ok": False, "error": problem, "traceback": ""})


def _import_function(name: str) -> Any:
    module_name, _, qualname = name.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        target = getattr(target, part)
    return target


def _adopt_caller(connection: socket.socket, request: dict, fds: list[int], baseline: ZygoteBaseline) -> bool:
    """Take the caller's stdio, cwd and environment if the request can run warm; else tell it so."""
    refusal = warm_refusal(request["env"], baseline)
    if refusal is not None:  # the caller runs it in a real interpreter instead
        for fd in fds:
            os.close(fd)
        send_message(connection, {"pid": os.getpid(), "warm": False, "reason": refusal})
        return False
    for target_fd, source_fd in zip((0, 1, 2), fds):
        os.dup2(source_fd, target_fd)
        os.close(source_fd)
    send_message(connection, {"pid": os.getpid(), "warm": True})
    connection.close()  # the zygote keeps its copy: it watches the caller and reports the exit status
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    return True


def _run_main_child(connection: socket.socket, request: dict, fds: list[int], baseline: ZygoteBaseline) -> None:
    try:
        function = _import_function(request["function"])
    except (ImportError, AttributeError) as error:
        for fd in fds:
            os.close(fd)
        send_message(connection, {"pid": os.getpid(), "warm": False, "reason": f"no {request['function']}: {error}"})
        return
    if _adopt_caller(connection, request, fds, baseline):
        call = (list(request["args"]), dict(request["kwargs"]))
        run_function_as_main(function, call, list(request["argv"]), request.get("umask"), baseline)
