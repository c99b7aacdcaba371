"""Training runs as the page starts and follows them: one registry per server, keyed by settings,
each job owned by the session that pressed Train."""
from __future__ import annotations

import functools
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from embedviz import comparison, jobs, training
from embedviz.config import EmbeddingConfig, ModelConfig, TrainConfig
from embedviz.ui import loaders, text
from embedviz.ui.sidebar import Selection


def session_id() -> str:
    """This visitor's session: the owner of the jobs it starts."""
    ctx = get_script_run_ctx()
    return ctx.session_id if ctx is not None else "no-session"


def run_key(model_cfg: ModelConfig, train_cfg: TrainConfig, sel: Selection) -> str:
    return training.run_key(model_cfg, train_cfg, data_key=f"{sel.corpus.text_key}|{sel.enc.name}")


def find(model_cfg: ModelConfig, train_cfg: TrainConfig, sel: Selection) -> jobs.Job | None:
    """The run with these settings that this visitor may see (a run someone else stopped is not)."""
    return loaders.registry().get(run_key(model_cfg, train_cfg, sel), owner=session_id())


def start(model_cfg: ModelConfig, train_cfg: TrainConfig, sel: Selection) -> jobs.Job | None:
    """Queue a run (or join the one with these settings); None, with the reason shown, when the
    queue is full."""
    rows = loaders.corpus_rows(sel.enc, sel.cfg.vocab_size, sel.corpus)
    return _submit(run_key(model_cfg, train_cfg, sel), functools.partial(training.train, model_cfg, train_cfg, rows))


def training_configs(cfg: EmbeddingConfig) -> tuple[ModelConfig, TrainConfig]:
    """The configs the training controls stand for, read from session state: the same on either tab."""
    s = st.session_state
    model_cfg = ModelConfig(cfg, n_layer=int(s["n_layer"]), n_head=int(s["n_head"]),
                            positional=s["positional"], rope_base=float(s["rope_base"]))
    return model_cfg, TrainConfig(steps=int(s["steps"]), batch_size=int(s["batch_size"]),
                                  learning_rate=float(s["learning_rate"]))


def comparison_key(model_cfg: ModelConfig, train_cfg: TrainConfig, sel: Selection, kinds: Sequence[str]) -> str:
    """A comparison is keyed by the schemes and the settings they share (not the scheme chosen for Train)."""
    shared = comparison.scheme_config(model_cfg, kinds[0])
    return training.run_key(shared, train_cfg, data_key=f"{sel.corpus.text_key}|{sel.enc.name}|schemes:{','.join(kinds)}")


def find_comparison(model_cfg: ModelConfig, train_cfg: TrainConfig, sel: Selection,
                    kinds: Sequence[str]) -> jobs.Job | None:
    return loaders.registry().get(comparison_key(model_cfg, train_cfg, sel, kinds), owner=session_id())


def start_comparison(model_cfg: ModelConfig, train_cfg: TrainConfig, sel: Selection,
                     kinds: Sequence[str]) -> jobs.Job | None:
    """Queue one job that trains every scheme in `kinds` in turn; None, with the reason shown, when the
    queue is full."""
    rows = loaders.corpus_rows(sel.enc, sel.cfg.vocab_size, sel.corpus)
    work = functools.partial(comparison.train_schemes, model_cfg, train_cfg, rows, kinds=tuple(kinds))
    return _submit(comparison_key(model_cfg, train_cfg, sel, kinds), work)


def _submit(key: Hashable, work: Callable[..., Any]) -> jobs.Job | None:
    try:
        return loaders.registry().submit(key, work, owner=session_id())
    except jobs.QueueFull as exc:
        st.warning(str(exc))
        return None


def stop_button(job: jobs.Job, *, key: str = "stop") -> None:
    """Stop, for the session that started the job only."""
    sid = session_id()
    if job.owner == sid:
        st.button("Stop", key=key, on_click=loaders.registry().stop, args=(job,), kwargs={"owner": sid},
                  help="Stops after the current step and keeps the model.")


@st.fragment(run_every=1.0)
def wait_for(job: jobs.Job, message: str) -> None:
    """A note that keeps the job alive while shown and reruns the page once it has finished."""
    if job.finished:
        st.rerun()
    loaders.registry().watch(job)
    st.info(message)


def result_of(job: jobs.Job, progress: Callable[[jobs.Job], None], *, noun: str, again: str) -> Any:
    """The result to show, or None: while the job runs, `progress(job)` draws it; when it failed or
    was cancelled, why is shown (`noun` names the job, `again` the button that queues it again)."""
    if not job.finished:
        progress(job)
        return None
    if job.state == jobs.FAILED:
        st.error(f"{noun.capitalize()} failed: {text.literal(job.error or '')}")
        return None
    if job.state == jobs.CANCELLED:
        st.info(f"That {noun} was cancelled before it started. Press **{again}** to queue it again.")
        return None
    return job.result


def no_progress_yet(job: jobs.Job) -> bool:
    """At the top of a progress fragment: rerun the page once the job is done, keep the job alive
    (a job whose page stops asking is cancelled), and say why nothing runs yet. True while it has no
    progress to show."""
    if job.finished:
        st.rerun()
    registry = loaders.registry()
    registry.watch(job)
    if job.state == jobs.QUEUED:
        st.info(f"Waiting for a free trainer: {registry.running()} training(s) running, "
                f"{registry.waiting_ahead(job)} queued before this one. It starts by itself.")
        return True
    if job.progress is None:
        st.progress(0.0, text="Starting…")
        return True
    return False
