"""Drives the lab's C# kernel through jupyter_client, as front ends do, and prints one line: RESULT <json>.

    /usr/bin/python3 tests/jupyter/kernel_probe.py <check> [args]

checks: interrupt LAB_DLL | interrupt-reuse LAB_DLL | bad-signature | update-display | bind-address | stdin | idle-with-reply | live-plotly LAB_DLL
The kernelspec lab-csharp must be on JUPYTER_PATH. Every wait is bounded; the kernel is shut down at the end.
"""
import json
import os
import signal
import queue
import socket
import subprocess
import sys
import tempfile
import time

from jupyter_client.manager import KernelManager
from jupyter_client.session import Session

TIMEOUT = 60


def start():
    log = tempfile.NamedTemporaryFile(mode="w+", prefix="lab-kernel-", suffix=".log", delete=False)
    km = KernelManager(kernel_name="lab-csharp")
    t0 = time.monotonic()
    km.start_kernel(stdout=log, stderr=log)
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=TIMEOUT)
    return km, kc, log, time.monotonic() - t0


def stop(km, kc):
    try:
        kc.stop_channels()
    finally:
        km.shutdown_kernel(now=False)


def drain(kc):
    """Drops replies still queued (wait_for_ready sends kernel_info until one is answered)."""
    while True:
        try:
            kc.get_shell_msg(timeout=0.5)
        except queue.Empty:
            return


def run(kc, code, **kw):
    """Executes code; returns (reply content, [iopub messages for it])."""
    msgs = []
    reply = kc.execute_interactive(code, output_hook=msgs.append, timeout=TIMEOUT, **kw)
    return reply["content"], msgs


def interrupt(lab_dll):
    km, kc, log, _ = start()
    try:
        content, _ = run(kc, '#r "%s"' % lab_dll)
        assert content["status"] == "ok", content
        code = (
            'var l = Lab.Sockets.Listener.Open("127.0.0.1:0");\n'
            'Console.WriteLine($"port {l.Port}");\n'
            "l.Accept();"
        )
        msg_id = kc.execute(code)
        port = None
        deadline = time.monotonic() + TIMEOUT
        while port is None and time.monotonic() < deadline:
            m = kc.get_iopub_msg(timeout=TIMEOUT)
            if m["parent_header"].get("msg_id") == msg_id and m["msg_type"] == "stream":
                port = int(m["content"]["text"].split()[1])
        # The cell is now blocked in accept(2) (it printed just before calling it).
        time.sleep(0.3)
        t0 = time.monotonic()
        km.interrupt_kernel()  # interrupt_mode "message": an interrupt_request on the control channel
        reply = kc.get_shell_msg(timeout=TIMEOUT)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = kc.get_shell_msg(timeout=TIMEOUT)
        stopped_after = time.monotonic() - t0
        # The listener was disposed: its port can be bound again.
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
            port_free = True
        except OSError:
            port_free = False
        finally:
            s.close()
        after, after_msgs = run(kc, "1 + 1")
        value = [m["content"]["data"]["text/plain"] for m in after_msgs if m["msg_type"] == "execute_result"]
        return {
            "status": reply["content"]["status"],
            "ename": reply["content"].get("ename"),
            "evalue": reply["content"].get("evalue"),
            "stopped_after": stopped_after,
            "port_free": port_free,
            "next_status": after["status"],
            "next_value": value[0] if value else None,
        }
    finally:
        stop(km, kc)


def interrupt_reuse(lab_dll):
    """A listener opened in one cell, a blocking accept in the next, interrupted, then a cell that connects and
    accepts: the interrupted thread must be out of accept4 and the first cell's listener still open."""
    km, kc, log, _ = start()
    try:
        content, _ = run(kc, '#r "%s"' % lab_dll)
        assert content["status"] == "ok", content
        content, _ = run(kc, 'var l = Lab.Sockets.Listener.Open("127.0.0.1:0");')
        assert content["status"] == "ok", content
        msg_id = kc.execute('Console.WriteLine("accepting"); l.Accept();')
        deadline = time.monotonic() + TIMEOUT
        seen = False
        while not seen and time.monotonic() < deadline:
            m = kc.get_iopub_msg(timeout=TIMEOUT)
            seen = m["parent_header"].get("msg_id") == msg_id and m["msg_type"] == "stream"
        time.sleep(2)  # the cell has been blocked in accept4 for a while, as in a class
        km.interrupt_kernel()
        reply = kc.get_shell_msg(timeout=TIMEOUT)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = kc.get_shell_msg(timeout=TIMEOUT)
        after, after_msgs = run(kc, 'var c = Lab.Sockets.Client.Connect(l.LocalEndPoint, TimeSpan.FromSeconds(3));\n'
                                    'var r = l.Accept(TimeSpan.FromSeconds(3));\nc.Dispose(); r.Dispose(); l.Dispose();\nr.GetType().Name')
        value = [m["content"]["data"]["text/plain"] for m in after_msgs if m["msg_type"] == "execute_result"]
        return {
            "status": reply["content"]["status"],
            "evalue": reply["content"].get("evalue"),
            "next_status": after["status"],
            "next_value": value[0] if value else None,
        }
    finally:
        stop(km, kc)


def bad_signature():
    km, kc, log, _ = start()
    try:
        sock = kc.shell_channel.socket
        drain(kc)
        got = {}
        for name, key in (("wrong_key", b"not-the-key"), ("unsigned", b"")):
            sent = Session(key=key, username="probe").send(sock, "kernel_info_request", {})
            got[name] = "no reply"
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline:
                try:
                    m = kc.get_shell_msg(timeout=max(0.01, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if m["parent_header"].get("msg_id") == sent["header"]["msg_id"]:
                    got[name] = "replied"
        msg_id = kc.kernel_info()
        reply = kc.get_shell_msg(timeout=TIMEOUT)
        log.flush()
        with open(log.name) as f:
            logged = f.read()
        got.update({
            "good_reply": reply["msg_type"],
            "good_parent_matches": reply["parent_header"].get("msg_id") == msg_id,
            "logged": logged.count("dropped a message"),
        })
        return got
    finally:
        stop(km, kc)


def update_display():
    km, kc, log, _ = start()
    try:
        content, msgs = run(kc, "var d = display(1); d.Update(2);")
        shown = [(m["msg_type"], m["content"].get("transient", {}).get("display_id"), m["content"]["data"]["text/plain"])
                 for m in msgs if m["msg_type"] in ("display_data", "update_display_data")]
        return {"status": content["status"], "shown": shown}
    finally:
        stop(km, kc)


def bind_address():
    km, kc, log, started = start()
    try:
        info = km.get_connection_info()
        ports = [info[k] for k in ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")]
        pid = km.provisioner.pid if km.provisioner else None
        ss = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, timeout=30).stdout
        mine = [line for line in ss.splitlines() if pid is not None and ("pid=%d," % pid) in line]
        local = sorted(line.split()[3] for line in mine)
        return {"ip": info["ip"], "ports": sorted(ports), "listening": local, "started_in": started}
    finally:
        stop(km, kc)


def stdin():
    km, kc, log, _ = start()
    try:
        answers = []

        def stdin_hook(msg):
            answers.append(msg["content"]["prompt"])
            kc.input("typed in the front end")

        reply = kc.execute_interactive('Console.ReadLine() + "!"', allow_stdin=True, timeout=TIMEOUT,
                                       output_hook=lambda m: results.append(m), stdin_hook=stdin_hook)
        value = [m["content"]["data"]["text/plain"] for m in results if m["msg_type"] == "execute_result"]
        del results[:]
        refused, msgs = run(kc, "Console.ReadLine()", allow_stdin=False)
        return {
            "requests": len(answers), "value": value[0] if value else None, "status": reply["content"]["status"],
            "refused_status": refused["status"], "refused_ename": refused.get("ename"), "refused_evalue": refused.get("evalue"),
        }
    finally:
        stop(km, kc)


def idle_with_reply(rounds="40"):
    """Freezes the kernel (SIGSTOP) the moment each execute_reply arrives, then reads iopub: the idle status must
    already be on its way. A kernel that publishes idle after the reply, from another step, leaves it unsent."""
    km, kc, log, _ = start()
    pid = km.provisioner.process.pid
    missing, seen = [], 0
    try:
        drain(kc)
        for i in range(int(rounds)):
            msg_id = kc.execute("display(%d);" % i)
            reply = kc.get_shell_msg(timeout=TIMEOUT)
            while reply["parent_header"].get("msg_id") != msg_id:
                reply = kc.get_shell_msg(timeout=TIMEOUT)
            os.kill(pid, signal.SIGSTOP)
            try:
                idle = False
                deadline = time.monotonic() + 1.0
                while not idle and time.monotonic() < deadline:
                    try:
                        m = kc.get_iopub_msg(timeout=0.2)
                    except queue.Empty:
                        break
                    if m["parent_header"].get("msg_id") == msg_id and m["msg_type"] == "status":
                        idle = m["content"]["execution_state"] == "idle"
                seen += 1
                if not idle:
                    missing.append(i)
            finally:
                os.kill(pid, signal.SIGCONT)
            if not idle:  # collect the late idle so the next round starts clean
                while True:
                    m = kc.get_iopub_msg(timeout=TIMEOUT)
                    if m["parent_header"].get("msg_id") == msg_id and m["msg_type"] == "status" and m["content"]["execution_state"] == "idle":
                        break
        return {"rounds": seen, "missing": missing}
    finally:
        stop(km, kc)


def live_plotly(lab_dll):
    """A live display whose first frame is the session's first chart (so it carries plotly.js), updated twice: the
    display's last state, the one nbclient or VS Code saves, must still carry plotly.js."""
    km, kc, log, _ = start()
    try:
        content, _ = run(kc, '#r "%s"' % lab_dll)
        assert content["status"] == "ok", content
        chart = 'Lab.Charts.LabCharts.TimeSeries("t", "y", Lab.Charts.Series.From("s", new[] { 1.0, 2.0, %s }, x => x, x => x))'
        code = 'var v = display(HTML("starting")); v.Update(%s); v.Update(%s);' % (chart % "3.0", chart % "4.0")
        content, msgs = run(kc, code)
        last, frames = {}, 0
        for m in msgs:
            if m["msg_type"] in ("display_data", "update_display_data"):
                frames += 1
                last[m["content"]["transient"]["display_id"]] = m["content"]["data"].get("text/html", "")
        return {"status": content["status"], "frames": frames, "displays": len(last),
                "last_carries": ["data-lab-plotly-js=" in h for h in last.values()]}
    finally:
        stop(km, kc)


results = []

if __name__ == "__main__":
    check = sys.argv[1]
    fn = {"interrupt": interrupt, "interrupt-reuse": interrupt_reuse, "bad-signature": bad_signature, "update-display": update_display,
          "bind-address": bind_address, "stdin": stdin, "idle-with-reply": idle_with_reply, "live-plotly": live_plotly}[check]
    out = fn(*sys.argv[2:])
    print("RESULT " + json.dumps(out), flush=True)
