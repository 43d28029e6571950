"""The seed's Python API runs as written, through the same path as `symphony apply`."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

import symphony
from symphony.errors import ManifestError
from symphony.testing import wait_for

LEARNER = """\
import os, socket, threading
def serve(name):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((os.environ[f"SYMPH_{name}_HOST"], int(os.environ[f"SYMPH_{name}_PORT"]))); s.listen()
    while True:
        conn, _ = s.accept(); data = conn.recv(100).decode()
        print(f"{name} got: {data}", flush=True); conn.sendall(b"ack"); conn.close()
threading.Thread(target=serve, args=("PARAMETER_SERVER",), daemon=True).start()
serve("REPLAY_SERVER")
"""

AGENT = """\
import os, socket, sys, time
for name in ("REPLAY_SERVER", "PARAMETER_SERVER"):
    for _ in range(100):
        try:
            with socket.create_connection((os.environ[f"SYMPH_{name}_HOST"], int(os.environ[f"SYMPH_{name}_PORT"]))) as c:
                c.sendall(f"hello from agent env={sys.argv[2]}".encode()); print(name, c.recv(10).decode(), flush=True)
            break
        except OSError:
            time.sleep(0.1)
time.sleep(600)
"""


def test_seed_example_runs_as_written(tmux_socket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "learner.py").write_text(LEARNER)
    (tmp_path / "agent.py").write_text(AGENT)
    monkeypatch.chdir(tmp_path)

    from symphony.engine import Cluster

    cluster = Cluster.new("tmux")
    exp = cluster.new_experiment("rl")
    learner = exp.new_process("learner", command="python", args=["learner.py"])
    agent = exp.new_process("agent", command="python", args=["agent.py", "--env", "half-cheetah"])
    learner.binds("replay-server")
    learner.binds("parameter-server")
    agent.connects("replay-server")
    agent.connects("parameter-server")
    cluster.launch(exp)

    def learner_heard_both() -> bool:
        log = "".join(cluster_logs("rl", "learner"))
        return "REPLAY_SERVER got: hello from agent env=half-cheetah" in log and "PARAMETER_SERVER got" in log

    wait_for(learner_heard_both, timeout=30, message=lambda: "".join(cluster_logs("rl", "learner")))
    states = {o.key: o.state.value for o in cluster.status("rl")}
    assert states == {"learner": "running", "agent": "running"}
    cluster.launch(exp)  # re-launch is a no-op
    assert {o.key: o.state.value for o in cluster.status(exp)} == states
    cluster.delete(exp)
    assert cluster.status("rl") == []


def cluster_logs(experiment: str, key: str) -> list[str]:
    from symphony.clusters.tmux import TmuxCluster
    from symphony.model import LOCAL

    return list(TmuxCluster(LOCAL).logs(experiment, key))


def test_connects_to_nobody_is_refused_before_anything_starts(tmux_socket: str) -> None:
    cluster = symphony.Cluster.new("tmux")
    exp = cluster.new_experiment("broken")
    exp.new_process("a", command=["sleep", "60"]).connects("nobody")
    with pytest.raises(ManifestError, match="connects to 'nobody', which no process binds or exposes"):
        cluster.launch(exp)
    assert cluster.status("broken") == []


def test_to_manifest_is_what_a_user_would_write() -> None:
    cluster = symphony.Cluster.new("tmux")
    exp = cluster.new_experiment("rl", env={"SEED": 1})
    exp.new_process("learner", command=["python", "learner.py"]).binds(["a", "b"]).exposes({"tb": 6006})
    exp.new_process("agent", command="python agent.py", replicas=2).connects(["a", "b"])
    group = exp.new_process_group("eval")
    group.new_process("evaluator", command=["python", "eval.py"]).connects("b")
    assert yaml.safe_load(exp.to_manifest()) == yaml.safe_load(
        textwrap.dedent(
            """\
            apiVersion: symphony/v1
            kind: Experiment
            metadata: {name: rl}
            spec:
              env: {SEED: "1"}
              processes:
                - {name: learner, command: [python, learner.py], binds: [a, b], exposes: {tb: 6006}}
                - {name: agent, command: python agent.py, replicas: 2, connects: [a, b]}
              groups:
                - name: eval
                  processes:
                    - {name: evaluator, command: [python, eval.py], connects: [b]}
            """
        )
    )
    (model,) = cluster.manifests(exp).experiments
    assert [p.key for p in model.processes] == ["learner", "agent-0", "agent-1", "eval/evaluator"]


def test_public_api_is_what_the_readme_says() -> None:
    assert sorted(symphony.__all__) == [
        "Cluster",
        "ExperimentSpec",
        "ManifestError",
        "OperationFailed",
        "ProcessGroupSpec",
        "ProcessSpec",
        "UserError",
    ]
    from symphony.engine import Cluster

    assert Cluster is symphony.Cluster
    with pytest.raises(ValueError, match="unknown cluster type 'slurm'"):
        Cluster.new("slurm")
