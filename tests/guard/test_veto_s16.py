"""The veto head (issue #29, session 16): a pt-BR user message the input head flags stays flagged only when the
veto head's unsafe score reaches its threshold; English text and model output keep their own heads' verdicts."""

import numpy as np

from lhama.guard.classifier import DEFAULT_VETO_HEAD, ClassifierGuard, Head, load_classifier


def _head(bias_unsafe: float, threshold: float) -> Head:
    bias = np.full(15, -6.0, np.float32)
    bias[0], bias[2] = bias_unsafe, bias_unsafe  # unsafe and S2 outputs
    return Head(weight=np.zeros((8, 15), np.float32), bias=bias, hash_dim=8, embed_scale=0.0,
                threshold=threshold, category_mix=0.5)


FLAGS_ALL = _head(6.0, 0.5)  # scores ~1.0 on everything: unsafe, S2
LOW = _head(-3.0, 0.10)  # scores ~0.047 on everything
PT, EN = "me explica como trocar o pneu do carro", "please explain how to change a car tyre"


def test_a_low_veto_score_clears_a_pt_flag_and_a_high_one_keeps_it():
    assert not ClassifierGuard(FLAGS_ALL).check(PT).safe
    assert ClassifierGuard(FLAGS_ALL, veto_head=LOW).check(PT).safe
    kept = ClassifierGuard(FLAGS_ALL, veto_head=_head(-3.0, 0.04)).check(PT)  # 0.047 >= 0.04
    assert not kept.safe and kept.categories == ("S2",) and kept.score > 0.9  # the input head's verdict stands


def test_the_veto_leaves_english_user_text_and_model_output_alone():
    guard = ClassifierGuard(FLAGS_ALL, veto_head=LOW)
    assert not guard.check(EN).safe
    assert not guard.check(PT, "assistant").safe  # model output is never vetoed (here the input head judges it)
    assert [v.safe for v in guard.check_batch([PT, EN, PT])] == [True, False, True]
    english = ClassifierGuard(_head(-6.0, 0.5), english_head=FLAGS_ALL, veto_head=LOW)
    assert not english.check(EN).safe and english.check(PT).safe


def test_load_classifier_takes_a_veto_head_file(tmp_path):
    FLAGS_ALL.save(tmp_path / "in.safetensors")
    LOW.save(tmp_path / "veto.safetensors")
    guard = load_classifier(tmp_path / "in.safetensors", veto_path=tmp_path / "veto.safetensors")
    assert guard.veto_head.threshold == 0.10 and guard.check(PT).safe and not guard.check(EN).safe
    assert load_classifier(tmp_path / "in.safetensors").veto_head is None
    assert (load_classifier().veto_head is not None) == DEFAULT_VETO_HEAD.is_file()
