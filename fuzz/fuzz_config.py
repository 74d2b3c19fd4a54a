"""Coverage-guided fuzzing of the config loader with atheris (libFuzzer for Python).

Each input is ``[mode byte][bytes]``. Mode 0: the bytes are a TOML file given to
``load_config``. Mode 1: the bytes are ``--set`` items, one a line, given to
``apply_overrides``. Either way the result then goes where ``aerec train`` takes it: the model
family resolves its settings and a network is trained for one epoch on a toy matrix
(``fuzz/targets.py``). Anything but ConfigError (or TrainingError for a combination the
trainer refuses) is a crash: libFuzzer stops and writes the input to ``crash-<sha1>``.

Usage (from the repository root; ``pip install atheris``)::

    mkdir -p /tmp/corpus-config
    python fuzz/fuzz_config.py /tmp/corpus-config -runs=10000 -max_len=1024
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

with atheris.instrument_imports(include=["aerec", "fuzz"]):
    import aerec.recommender  # noqa: F401 - imported here so that its code is instrumented too
    import aerec.training  # noqa: F401
    from fuzz import targets as T

WORK = T.Workdir()

SEEDS = {
    "toml-autorec": b'[model]\nkind = "autorec"\nhidden = [4]\nl2 = 1.0\n[train]\nepochs = 2\nlbfgs_iterations = 3\n'
                    b'[run]\nseed = 3\ndevice = "cpu"\n',
    "toml-sae": b'[model]\nkind = "sae"\npreset = "course"\nhidden = [4, 2, 4]\n[train]\nbatch_size = 2\n',
    "toml-deep": b'[model]\nkind = "deep"\nhidden = [4, 4]\ncode_dropout = 0.5\n[train]\noptimizer = "momentum"\n'
                 b'lr = 0.01\nschedule = "step"\nstep_size = 1\ngamma = 0.5\ndense_refeeding = 1\n',
    "toml-dae": b'[model]\nkind = "dae"\nhidden = [3]\ninput_dropout = 0.2\n[train]\nschedule = "plateau"\n'
                b'max_grad_norm = 1.0\nweight_decay = 0.01\n',
    "sets": b"model.kind=sparse\nmodel.hidden=[3]\ntrain.lr=1e-2\ntrain.optimizer=adamw\nrun.threads=1\n",
    "sets-cosine": b"model.hidden=[2]\ntrain.schedule=cosine\ntrain.batch_size=0\ntrain.optimizer=sgd\n",
}


def test_one_input(data: bytes) -> None:
    if not data:
        return
    body = data[1:]
    if data[0] % 2 == 0:
        T.toml_case(WORK, body)
    else:
        lines = body.decode("utf-8", errors="replace").split("\n")
        T.overrides_case([line for line in lines if line][:8])


def main() -> None:
    folders = [Path(a) for a in sys.argv[1:] if not a.startswith("-") and Path(a).is_dir()]
    for folder in folders:
        if not any(folder.iterdir()):
            for name, content in SEEDS.items():
                mode = 1 if name.startswith("sets") else 0
                (folder / f"seed-{name}").write_bytes(bytes([mode]) + content)
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
