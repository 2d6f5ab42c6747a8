"""Helpers the tests share: `tiny_job` (a discovery job that runs in seconds, and the subprocess
plumbing to run, kill and resume it) and `fabricate` (run directories and exported rules made in
tmp dirs for the evaluation and inspection tests)."""
