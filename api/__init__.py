"""x"""
from ledger.application import TaskLedger
from projections.queries import TaskView
