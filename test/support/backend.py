"""test/support/server.py, the stand-in Performance Studio on 127.0.0.1, as
a child process of a test, driven through its control port."""
import json
import os
import subprocess
import sys
import urllib.request

SERVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "server.py")


class Backend:
    def __init__(self, test, token, service):
        self.proc = subprocess.Popen([sys.executable, SERVER, "--token", token,
                                      "--service", service],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)
        test.addCleanup(self.stop)
        line = self.proc.stdout.readline().split()
        assert line and line[0] == "READY", line
        self.port, self.control = int(line[1]), int(line[2])
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def call(self, path, arg=None):
        """GET (or POST `arg` as JSON to) a path of the control port."""
        data = None if arg is None else json.dumps(arg).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{self.control}{path}", data=data,
                                     method="GET" if arg is None else "POST")
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())

    def requests(self):
        return self.call("/requests")
