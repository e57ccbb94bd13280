"""The job manager: pygeoapi's TinyDB manager that also sends large inputs to a job by itself.

OGC API - Processes lets the client choose (``Prefer: respond-async``). A client that does not know an input is
large would wait minutes for a synchronous answer (and hit proxy time-outs), so a process may declare an input
large (``AnalysisProcessor.is_large``): it then runs as a job unless the client explicitly asked to wait
(``Prefer: wait``), and the answer is 201 with the job's address.
"""
from __future__ import annotations

from pygeoapi.process.manager.tinydb_ import TinyDBManager
from pygeoapi.util import RequestedProcessExecutionMode


class AnalysisManager(TinyDBManager):
    def execute_process(self, process_id, data_dict, execution_mode=None, *args, **kwargs):
        if execution_mode is None:
            processor = self.get_processor(process_id)
            is_large = getattr(processor, "is_large", None)
            try:
                large = bool(is_large and is_large(data_dict or {}))
            except Exception:  # noqa: BLE001 - bad input: let the synchronous run answer 400 with the reason
                large = False
            if large:
                execution_mode = RequestedProcessExecutionMode.respond_async
        return super().execute_process(process_id, data_dict, execution_mode, *args, **kwargs)
