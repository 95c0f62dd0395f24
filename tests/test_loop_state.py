"""``OUT/loop_state.json`` claims its folder: other settings are refused, settings an older version left out not."""
import json
import os.path as osp

import pytest

from desra_basicsr.errors import DesraSettingsError
from desra_basicsr.jobs.loop_state import STATE_FILE, LoopState


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
