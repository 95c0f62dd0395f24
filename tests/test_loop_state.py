"""``OUT/loop_state.json`` claims its folder: other settings are refused, settings an older version left out not."""
import json
import os.path as osp

import pytest

from desra_basicsr.errors import DesraSettingsError
from desra_basicsr.jobs.loop_state import DIGESTS, STATE_FILE, LoopState


def write_state(out, settings):
    LoopState(str(out), settings, []).save()


def test_a_changed_or_dropped_setting_is_refused_naming_it(tmp_path):
    write_state(tmp_path, {'seed': 0, 'tile': 0})
    with pytest.raises(DesraSettingsError, match=r'other settings \(tile\); run it with the same settings'):
        LoopState(str(tmp_path), {'seed': 0, 'tile': 32}, [])
    with pytest.raises(DesraSettingsError, match=r'other settings \(tile\)'):
        LoopState(str(tmp_path), {'seed': 0}, [])


def test_a_setting_an_older_state_file_does_not_record_is_taken_and_recorded(tmp_path):
    write_state(tmp_path, {'seed': 0})  # written before the tile was recorded
    state = LoopState(str(tmp_path), {'seed': 0, 'tile': 32}, [])
    assert state.data['settings'] == {'seed': 0, 'tile': 32}
    state.save()
    with open(osp.join(tmp_path, STATE_FILE)) as f:
        assert json.load(f)['settings'] == {'seed': 0, 'tile': 32}
    with pytest.raises(DesraSettingsError, match=r'other settings \(tile\)'):
        LoopState(str(tmp_path), {'seed': 0, 'tile': 0}, [])


def test_a_file_changed_at_the_same_path_is_refused_naming_it(tmp_path):
    recipe = tmp_path / 'recipe.yml'
    recipe.write_text('train: {lr: 1.0e-5}\n')
    out = tmp_path / 'out'
    LoopState(str(out), {'seed': 0, 'template': str(recipe)}, [], {'template': str(recipe)}).save()
    recipe.write_text('train: {lr: 1.0e-5}\n')  # written again with the same bytes: the same file
    LoopState(str(out), {'seed': 0, 'template': str(recipe)}, [], {'template': str(recipe)})
    recipe.write_text('train: {lr: 1.0e-3}\n')
    with pytest.raises(DesraSettingsError, match=rf'other settings \(the contents of template {recipe}\); run it with '
                       r'the same settings and files to resume, or use another --out'):
        LoopState(str(out), {'seed': 0, 'template': str(recipe)}, [], {'template': str(recipe)})


def test_a_state_file_without_the_files_digests_is_taken_and_they_are_recorded(tmp_path):
    recipe = tmp_path / 'recipe.yml'
    recipe.write_text('train: {lr: 1.0e-5}\n')
    write_state(tmp_path, {'seed': 0})  # written before the files' SHA-256 was recorded
    state = LoopState(str(tmp_path), {'seed': 0}, [], {'template': str(recipe)})
    assert set(state.data['settings']) == {'seed', DIGESTS} and set(state.data['settings'][DIGESTS]) == {'template'}
    state.save()
    recipe.write_text('train: {lr: 1.0e-3}\n')
    with pytest.raises(DesraSettingsError, match='the contents of template'):
        LoopState(str(tmp_path), {'seed': 0}, [], {'template': str(recipe)})
