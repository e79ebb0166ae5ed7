#!/usr/bin/env python3
"""CPU the agent costs per window with 1, 10 and 100 Java processes, with the
Java runtime profiler (perf-map: jattach or jcmd Compiler.perfmap once per
JVM per window) and with perf alone (--no-java), in the same run.

The JVMs run a small busy loop (-Xmx32m, one thread, about 2 % of a CPU
each). For each count the agent runs one window of DURATION seconds as
root; its CPU is user + system time of the agent and every child it
started (perf record, perf script, jcmd/jattach), from the kernel's rusage
of the finished process tree.

Usage: java_cpu.py AGENT WORKDIR [DURATION] [COUNTS]
       (defaults: 20 s, "1,10,100")
"""
import os
import resource
import subprocess
import sys
import tempfile
import time

SPIN = """
public class Spin {
    public static void main(String[] a) throws Exception {
        long s = 0;
        while (true) {
            for (int i = 0; i < 200000; i++) s += i % 7;
            Thread.sleep(20);
            if (s == 42) System.out.println(s);
        }
    }
}
"""


def agent_cpu(agent, out, duration, extra):
    """Runs one window; returns (cpu seconds of the agent's tree, wall s)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.time()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPROFILER_")}
    env["GPA_DEFAULT_CONFIG"] = ""
    subprocess.run([agent, "-o", out, "-d", str(duration), "--pid-file", "",
                    "--log-file", ""] + extra, check=True, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.time() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall


def main():
    agent = os.path.abspath(sys.argv[1])
    work = sys.argv[2]
    duration = int(sys.argv[3]) if len(sys.argv) > 3 else 20
    counts = [int(c) for c in (sys.argv[4] if len(sys.argv) > 4 else "1,10,100").split(",")]
    os.makedirs(work, exist_ok=True)
    src = os.path.join(work, "Spin.java")
    with open(src, "w") as f:
        f.write(SPIN)
    subprocess.run(["javac", "-d", work, src], check=True)
    tool = "jattach" if subprocess.run(["which", "jattach"], capture_output=True).returncode == 0 \
        else "jcmd"
    print(f"window {duration} s, Java tool: {tool}; CPU = user+system of the agent "
          f"and all its children over one window")
    print(f"{'JVMs':>5} {'agent, perf + java':>20} {'agent, perf alone':>20} {'java part':>10}")
    jvms = []
    try:
        for n in counts:
            while len(jvms) < n:
                jvms.append(subprocess.Popen(["java", "-Xmx32m", "-XX:TieredStopAtLevel=1",
                                              "-cp", work, "Spin"],
                                             stdout=subprocess.DEVNULL,
                                             stderr=subprocess.DEVNULL))
            time.sleep(5 + n * 0.05)  # the JVMs start and compile
            out = tempfile.mkdtemp(dir=work)
            with_java, _ = agent_cpu(agent, out, duration, [])
            alone, _ = agent_cpu(agent, out, duration, ["--no-java"])
            print(f"{n:>5} {with_java:>18.2f} s {alone:>18.2f} s {with_java - alone:>8.2f} s",
                  flush=True)
    finally:
        for p in jvms:
            p.kill()
        for p in jvms:
            p.wait()


if __name__ == "__main__":
    main()
