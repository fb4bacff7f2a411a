"""Domain and application service of taskledger: the Task aggregate and the TaskLedger application."""
