"""Planning a file job: every mistake that can be seen before the first image is read is refused
then, and a folder job never takes its own outputs as inputs."""
import pytest
from PIL import Image

from conftest import smooth_image
from srnl import SrnlError
from srnl.files import plan_jobs


def _images(folder, *names):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        Image.fromarray(smooth_image(8, 8)).save(folder / name)
    return folder


def _planned(jobs, root):
    return [(j.src.relative_to(root).as_posix(), j.dst.relative_to(root).as_posix()) for j in jobs]


def test_a_folder_job_run_again_leaves_its_own_outputs_out(tmp_path):
    src = _images(tmp_path, "p.png", "p_x2.png", "p_x2_x2.png", "q.jpg", "q_x2.png", "r_x2.png")
    # r_x2.png is nobody's output; nor is q_x2.png while q.jpg stays a JPEG.
    assert _planned(plan_jobs([src], None, "_x2"), src) == [
        ("p.png", "p_x2.png"), ("q.jpg", "q_x2.jpg"), ("q_x2.png", "q_x2_x2.png"),
        ("r_x2.png", "r_x2_x2.png")]
    assert _planned(plan_jobs([src], None, "_x2", "png"), src) == [
        ("p.png", "p_x2.png"), ("q.jpg", "q_x2.png"), ("r_x2.png", "r_x2_x2.png")]


def test_an_output_folder_inside_the_input_folder_is_not_scanned(tmp_path):
    src = _images(tmp_path / "photos", "a.png")
    _images(src / "big", "a_x2.png")
    jobs = plan_jobs([src], src / "big", "_x2", recursive=True)
    assert _planned(jobs, src) == [("a.png", "big/a_x2.png")]


def test_an_explicit_input_that_is_another_inputs_output_is_refused(tmp_path):
    _images(tmp_path, "p.png", "p_x2.png")
    with pytest.raises(SrnlError, match="also the output of"):
        plan_jobs([tmp_path / "p.png", tmp_path / "p_x2.png"], None, "_x2")


def test_two_inputs_bound_for_one_output_are_refused(tmp_path):
    _images(tmp_path, "a.png", "a.jpg")
    with pytest.raises(SrnlError, match="would both be written to .*a_x2.png"):
        plan_jobs([tmp_path], None, "_x2", "png")
    assert len(plan_jobs([tmp_path], None, "_x2")) == 2  # a_x2.png and a_x2.jpg


@pytest.mark.parametrize("suffix", ["/../../x", "_x2/sub"])
def test_a_suffix_with_a_path_separator_is_refused(tmp_path, suffix):
    _images(tmp_path, "a.png")
    with pytest.raises(SrnlError, match="path separator"):
        plan_jobs([tmp_path / "a.png"], None, suffix)


def test_a_mistyped_format_is_refused_at_planning(tmp_path):
    _images(tmp_path, "a.png")
    with pytest.raises(SrnlError, match="unsupported output format 'jgp'"):
        plan_jobs([tmp_path], None, "_x2", "jgp")


def test_an_output_file_takes_one_input_of_a_writable_format(tmp_path):
    _images(tmp_path, "a.png", "b.png")
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    with pytest.raises(SrnlError, match="names one file, but there are 2 input images"):
        plan_jobs([a, b], tmp_path / "one.png", "_x2")
    with pytest.raises(SrnlError, match="names one file"):
        plan_jobs([tmp_path], tmp_path / "one.png", "_x2")
    with pytest.raises(SrnlError, match="unsupported output format '.gif'"):
        plan_jobs([a], tmp_path / "out.gif", "_x2")
    with pytest.raises(SrnlError, match="says JPEG, but the format asked for is PNG"):
        plan_jobs([a], tmp_path / "out.jpg", "_x2", "png")
    [job] = plan_jobs([a], tmp_path / "out.jpg", "_x2", "jpeg")
    assert job.dst == tmp_path / "out.jpg"
    assert not any(p.is_dir() for p in tmp_path.iterdir())
