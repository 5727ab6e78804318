"""Services of the refresh system: functions that change state. Import from the modules."""
