/**
 * The stdout callback plugin the agent hands to `ansible-playbook`.
 *
 * ansible-core (Debian's `ansible-core` 2.14 included) has no JSON stdout
 * callback: `ANSIBLE_STDOUT_CALLBACK=json` fails with "Invalid callback for
 * stdout specified: json" unless the ansible.posix collection is installed.
 * So the agent writes this small plugin to the run's temp directory and
 * selects it with ANSIBLE_CALLBACK_PLUGINS + ANSIBLE_STDOUT_CALLBACK.
 *
 * It produces the document ansible.posix.json does (plays -> tasks -> hosts
 * results, per-host `stats`, `custom_stats`, and `global_custom_stats`, where
 * `set_stats` data lands unless `per_host: true`), written to the file named
 * by RHIZOME_ANSIBLE_RESULT so that nothing else on stdout can corrupt it;
 * stdout gets one readable line per task result for the run report. Failed
 * results carry `rhizome_ignored` when the task had `ignore_errors`.
 */

export const CALLBACK_NAME = 'rhizome_json';

/** Environment variable naming the file the plugin writes its JSON to. */
export const RESULT_ENV = 'RHIZOME_ANSIBLE_RESULT';

export const CALLBACK_SOURCE = String.raw`# Rhizome's stdout callback for ansible-playbook.
#
# ansible-core does not ship a JSON stdout callback (the json callback lives in
# the ansible.posix collection), so the agent brings this one. It writes one
# JSON document with the same shape as ansible.posix.json:
#   {"plays": [{"play": {...}, "tasks": [{"task": {...}, "hosts": {HOST: result}}]}],
#    "stats": {HOST: {...}}, "custom_stats": {...}, "global_custom_stats": {...}}
# to the file named by RHIZOME_ANSIBLE_RESULT, and prints one readable line per
# task result to stdout for the run report.
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os

from ansible.parsing.ajson import AnsibleJSONEncoder
from ansible.plugins.callback import CallbackBase

DOCUMENTATION = '''
    name: rhizome_json
    type: stdout
    short_description: JSON results for the Rhizome agent
    description:
      - Writes the play results as JSON to the file in RHIZOME_ANSIBLE_RESULT.
'''


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'stdout'
    CALLBACK_NAME = 'rhizome_json'

    def __init__(self, display=None):
        super(CallbackModule, self).__init__(display)
        self.plays = []

    def _line(self, text):
        self._display.display(text)

    def v2_playbook_on_play_start(self, play):
        self.plays.append({'play': {'name': play.get_name(), 'id': str(play._uuid)}, 'tasks': []})
        self._line('PLAY %s' % play.get_name())

    def _entry(self, task):
        if not self.plays:
            self.plays.append({'play': {'name': '', 'id': ''}, 'tasks': []})
        tasks = self.plays[-1]['tasks']
        task_id = str(task._uuid)
        if not tasks or tasks[-1]['task']['id'] != task_id:
            tasks.append({'task': {'name': task.get_name(), 'id': task_id, 'action': task.action}, 'hosts': {}})
        return tasks[-1]

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._entry(task)

    def v2_playbook_on_handler_task_start(self, task):
        self._entry(task)

    def _record(self, status, result, extra=None):
        entry = self._entry(result._task)
        data = dict(result._result)
        data.pop('invocation', None)
        if extra:
            data.update(extra)
        host = result._host.get_name()
        entry['hosts'][host] = data
        msg = data.get('msg', '')
        if not isinstance(msg, str):
            msg = json.dumps(msg, cls=AnsibleJSONEncoder)
        if status == 'ok' and data.get('changed'):
            status = 'changed'
        shown = (' - ' + msg) if msg and status not in ('ok', 'changed') else ''
        self._line('%s: [%s] %s%s' % (status, host, entry['task']['name'], shown))

    def v2_runner_on_ok(self, result, **kwargs):
        self._record('ok', result)

    def v2_runner_on_failed(self, result, ignore_errors=False, **kwargs):
        self._record('ignored' if ignore_errors else 'failed', result, {'failed': True, 'rhizome_ignored': bool(ignore_errors)})

    def v2_runner_on_unreachable(self, result, **kwargs):
        self._record('unreachable', result, {'unreachable': True})

    def v2_runner_on_skipped(self, result, **kwargs):
        self._record('skipped', result, {'skipped': True})

    def v2_playbook_on_stats(self, stats):
        summary = {}
        for host in sorted(stats.processed.keys()):
            summary[host] = stats.summarize(host)
        custom = {}
        for key, value in (stats.custom or {}).items():
            custom[str(key)] = value
        global_custom = custom.pop('_run', {})
        output = {'plays': self.plays, 'stats': summary, 'custom_stats': custom, 'global_custom_stats': global_custom}
        path = os.environ.get('RHIZOME_ANSIBLE_RESULT')
        text = json.dumps(output, cls=AnsibleJSONEncoder, sort_keys=True)
        if path:
            with open(path, 'w') as f:
                f.write(text)
        else:
            self._line(text)
        for host, s in summary.items():
            self._line('RECAP [%s] ok=%d changed=%d failed=%d unreachable=%d skipped=%d' % (
                host, s.get('ok', 0), s.get('changed', 0), s.get('failures', 0), s.get('unreachable', 0), s.get('skipped', 0)))
`;
