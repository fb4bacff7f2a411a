"""Read models: projections that follow the event log and the queries the API asks of them."""
