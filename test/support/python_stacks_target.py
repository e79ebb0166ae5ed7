"""A Python process with known stacks, for the CPython stack reader's tests
(test/runtime/python_reader_test.cpp) and benchmark.

Threads (the lines marked "# @name" are the lines the reader must report):
  main:    <module> -> main_wait -> time.sleep
  busy:    outer_a -> middle_a -> leaf_a, spinning on one line (holds the GIL)
  sleeper: outer_b -> Sleeper.leaf_b -> time.sleep
  (extra: more busy threads when argv[1] says so, for the benchmark)

Prints one line of JSON when all threads run: each thread's name,
threading.get_ident() and kernel tid. Runs until killed (or stdin closes).
"""
import json
import os
import sys
import threading
import time

ready = {}
lock = threading.Lock()


def tid():
    if hasattr(threading, "get_native_id"):
        return threading.get_native_id()
    import ctypes
    return ctypes.CDLL(None).syscall(186)  # SYS_gettid on x86-64


def register(name):
    with lock:
        ready[name] = {"ident": threading.get_ident(), "tid": tid()}


def leaf_a():
    register("busy")
    n = 0
    while True: n += 1  # @leaf_a


def middle_a():
    leaf_a()  # @middle_a


def outer_a():
    middle_a()  # @outer_a


class Sleeper:
    def leaf_b(self):
        register("sleeper")
        while True:
            time.sleep(1000)  # @leaf_b


def outer_b():
    Sleeper().leaf_b()  # @outer_b


def main_wait():
    while len(ready) < 2:
        time.sleep(0.01)
    register("main")
    print(json.dumps(ready), flush=True)
    while True:
        time.sleep(1000)  # @main_wait


extra = int(sys.argv[1]) if len(sys.argv) > 1 else 0
threads = [threading.Thread(target=outer_a, name="busy", daemon=True),
           threading.Thread(target=outer_b, name="sleeper", daemon=True)]
threads += [threading.Thread(target=outer_b, daemon=True) for _ in range(extra)]
for t in threads:
    t.start()
main_wait()  # @main
